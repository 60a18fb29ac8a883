import { rateLimitedMessage, TandemErrorCode, type WireError } from '../../client/protocol.js';

/**
 * The refusal of a request over a rate limit. A plain `{code, message}`, not an Error:
 * ShareDB formats and logs the stack of every Error a middleware refuses with, and capturing
 * it was a fifth of the cost of a refusal in a flood. The wait is in the message
 * (client/protocol.ts rateLimitedMessage); MessageStream also sets `error.retryAfterMs`.
 */
export function rateLimited(what: string, retryAfterMs: number): WireError {
  return { code: TandemErrorCode.RATE_LIMITED, message: rateLimitedMessage(what, retryAfterMs) };
}
