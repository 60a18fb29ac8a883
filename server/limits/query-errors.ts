import { TandemError, TandemErrorCode } from '../../client/protocol.js';

/**
 * A query the server will not run: malformed, a refused operator, or a regular expression
 * that is unsafe or unsupported. ShareDB sends `{code, message}` of it to the client.
 */
export class QueryError extends TandemError {
  constructor(message: string) {
    super(TandemErrorCode.INVALID_QUERY, message);
  }
}

/** A well-formed query that would cost more than the limits allow (MAX_QUERY_SCAN, MAX_QUERY_RESULTS…). */
export class QueryTooLargeError extends TandemError {
  constructor(message: string) {
    super(TandemErrorCode.QUERY_TOO_LARGE, message);
  }
}
