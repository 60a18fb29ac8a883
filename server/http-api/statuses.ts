import { ShareDbErrorCode, TandemErrorCode } from '../../client/protocol.js';

/** The HTTP status of an `/api/v1` answer carrying `code` (README: "HTTP API"). */
const STATUS: Readonly<Record<string, number>> = {
  [TandemErrorCode.UNAUTHENTICATED]: 401,
  [TandemErrorCode.TOKEN_EXPIRED]: 401,
  [TandemErrorCode.FORBIDDEN]: 403,
  [TandemErrorCode.FOREIGN_SOURCE]: 403,
  [TandemErrorCode.ORIGIN_FORBIDDEN]: 403,
  [TandemErrorCode.NOT_FOUND]: 404,
  [ShareDbErrorCode.DOC_DOES_NOT_EXIST]: 404,
  [ShareDbErrorCode.ALREADY_CREATED]: 409,
  [ShareDbErrorCode.VERSION_NEWER]: 409,
  [ShareDbErrorCode.MAX_SUBMIT_RETRIES]: 409,
  [ShareDbErrorCode.NO_OP]: 409,
  [TandemErrorCode.FRAME_TOO_LARGE]: 413,
  [TandemErrorCode.OP_TOO_LARGE]: 413,
  [TandemErrorCode.DOC_TOO_LARGE]: 413,
  [TandemErrorCode.RATE_LIMITED]: 429,
  [TandemErrorCode.TOO_MANY_CONNECTIONS]: 429,
  [TandemErrorCode.MISSING_OPS]: 410,
  [TandemErrorCode.STORAGE_ERROR]: 503,
  [TandemErrorCode.SHUTTING_DOWN]: 503,
  [TandemErrorCode.UNKNOWN]: 500,
};

/** Anything not listed is a request the server could not use as sent: 400. */
export function httpStatusOf(code: string): number {
  return STATUS[code] ?? 400;
}
