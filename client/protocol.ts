/**
 * The wire contract between Tandem clients and servers. A leaf module: the only client file
 * the server imports.
 */

/** socket.io event that carries one ShareDB message, JSON-encoded, in either direction. */
export const SHAREDB_EVENT = 'sharedb';

/**
 * socket.io event that carries several ShareDB messages (an array, in order) from the server
 * to a client that asked for batches with BATCH_QUERY_PARAM. The server sends everything it
 * has for a socket at the end of an event-loop turn as one packet: one WebSocket frame and
 * one write instead of one per message, which is most of the server's cost of fan-out.
 */
export const SHAREDB_BATCH_EVENT = 'sharedb:batch';

/** Handshake query parameter ('1') by which a client accepts SHAREDB_BATCH_EVENT. */
export const BATCH_QUERY_PARAM = 'tandemBatch';

/** socket.io event the server sends before it disconnects a client to drain an instance. */
export const DRAIN_EVENT = 'tandem:drain';

/**
 * socket.io event by which a connected client hands the server a fresh token (same `sub`)
 * before the current one expires; acknowledged with `{ok: true}` or `{error: WireError}`.
 */
export const AUTH_REFRESH_EVENT = 'tandem:auth';

/** Query parameter carrying the token on `/sharedb` upgrades (browsers cannot set WS headers). */
export const TOKEN_QUERY_PARAM = 'token';

/** Path of ShareDB's plain protocol over a raw WebSocket (stock ShareDB clients). */
export const SHAREDB_WS_PATH = '/sharedb';

/**
 * Version of Tandem's own additions to ShareDB's protocol (the events and parameters above,
 * the error codes below). Raised when a change would make an older client and a newer server
 * (or the reverse) misunderstand each other; a server refuses a client that announces a
 * version it does not speak with TANDEM_PROTOCOL_VERSION, before anything reaches ShareDB.
 */
export const PROTOCOL_VERSION = 1;

/**
 * Handshake query parameter by which a client announces its PROTOCOL_VERSION (the SDK always
 * does, on socket.io; a client of `/sharedb` may). A query parameter rather than the socket.io
 * `auth` payload so that it means the same on both transports and is there even without
 * a token. Clients that announce nothing (stock ShareDB clients, raw socket.io) are accepted.
 */
export const PROTOCOL_QUERY_PARAM = 'tandemProtocol';

/**
 * Every error code Tandem itself can produce — on the wire, in the SDK, over HTTP and in the
 * `tandem` command line — in one table (ShareDB's own `ERR_…` codes are in ShareDbErrorCode).
 * Wire errors travel as ShareDB errors do: `{code, message}` in a reply's `error` field, or
 * `data.code` of a socket.io `connect_error`, or the JSON body `{error: {code, message}}` of
 * a refused HTTP request or `/sharedb` upgrade. README's error table lists the same codes
 * (test/docs/error-codes.test.ts keeps the three in step): add a code here and there, and
 * produce it only through this table.
 */
export const TandemErrorCode = {
  // --- Refused requests (a reply's `error`; the connection stays open) ---
  /** A frame that is not a JSON object. The connection stays open. */
  BAD_FRAME: 'TANDEM_BAD_FRAME',
  /** A frame larger than the server accepts. */
  FRAME_TOO_LARGE: 'TANDEM_FRAME_TOO_LARGE',
  /** An op that is not a valid json1 op. */
  INVALID_OP: 'TANDEM_INVALID_OP',
  /** An op (or created document) over the size limit. */
  OP_TOO_LARGE: 'TANDEM_OP_TOO_LARGE',
  /** An op (or created document) nested deeper than the limit. */
  OP_TOO_DEEP: 'TANDEM_OP_TOO_DEEP',
  /** A document created with a type other than json1. */
  UNSUPPORTED_TYPE: 'TANDEM_UNSUPPORTED_TYPE',
  /** The server is shutting down or draining; reconnect (elsewhere). */
  SHUTTING_DOWN: 'TANDEM_SHUTTING_DOWN',
  /** The connection's token expired: refresh it (SDK: `getToken()`) and send the request again. */
  TOKEN_EXPIRED: 'TANDEM_TOKEN_EXPIRED',
  /** The action (read, create, write, delete, a read-only path, presence) is not allowed by the access rules. */
  FORBIDDEN: 'TANDEM_FORBIDDEN',
  /**
   * An op or handshake carried a source id (`src`/`id`) that belongs to another user or
   * another live connection: op identity is bound to who sent it.
   */
  FOREIGN_SOURCE: 'TANDEM_FOREIGN_SOURCE',
  /**
   * Over a rate limit (ops, creates, queries, presence): the error carries `retryAfterMs`;
   * wait that long and send again (the SDK does, losing nothing).
   */
  RATE_LIMITED: 'TANDEM_RATE_LIMITED',
  /** The document would exceed MAX_DOC_BYTES after the op. */
  DOC_TOO_LARGE: 'TANDEM_DOC_TOO_LARGE',
  /** A collection name or document id that is not well-formed Unicode or is longer than MAX_ID_LENGTH. */
  INVALID_ID: 'TANDEM_INVALID_ID',
  /** A query the server cannot run (syntax, refused operators, unsafe regular expressions). */
  INVALID_QUERY: 'TANDEM_INVALID_QUERY',
  /** A query that would examine more than MAX_QUERY_SCAN or return more than MAX_QUERY_RESULTS documents. */
  QUERY_TOO_LARGE: 'TANDEM_QUERY_TOO_LARGE',
  /** A presence value over MAX_PRESENCE_BYTES. */
  PRESENCE_TOO_LARGE: 'TANDEM_PRESENCE_TOO_LARGE',
  /** Presence at a document version more than PRESENCE_MAX_LAG behind: re-send it at the current one. */
  PRESENCE_STALE: 'TANDEM_PRESENCE_STALE',
  /** More than MAX_SUBSCRIPTIONS documents, queries and presence channels on one connection. */
  TOO_MANY_SUBSCRIPTIONS: 'TANDEM_TOO_MANY_SUBSCRIPTIONS',
  /**
   * The store no longer has ops a request needs (a pruned op log, a restored backup). A
   * client's pending ops can then not be rebased; the SDK keeps them and reports this code.
   */
  MISSING_OPS: 'TANDEM_MISSING_OPS',
  /**
   * A resent op the server committed earlier, whose history compaction has since removed
   * (OPLOG_RETENTION): it is not applied again. The SDK takes it as acknowledged and
   * re-expresses the ops after it against the current document.
   */
  ALREADY_COMMITTED: 'TANDEM_ALREADY_COMMITTED',
  /** A storage failure on the server; the request may succeed later. */
  STORAGE_ERROR: 'TANDEM_STORAGE_ERROR',
  /**
   * The instance's store was already closed (a request that raced its shutdown); like
   * SHUTTING_DOWN, reconnect and send again.
   */
  DB_CLOSED: 'TANDEM_DB_CLOSED',
  /**
   * json1 could not transform an op against a concurrent one (an upstream json1 bug). The
   * server refuses the op with this code; the SDK also reports with it the local ops it had
   * to roll back because it could not rebase them onto a remote op. Equal to ot-types'
   * TRANSFORM_FAILED_CODE (ot-types cannot import this module).
   */
  TRANSFORM_FAILED: 'TANDEM_TRANSFORM_FAILED',

  // --- Refused connections (socket.io `connect_error` `data.code`; `/sharedb` HTTP status + JSON body) ---
  /**
   * No token, or one that is malformed, wrongly signed, expired, or for another issuer or
   * audience, at connect (`/sharedb`: HTTP 401; `/metrics`: 401). Nothing of the connection
   * reaches ShareDB.
   */
  UNAUTHENTICATED: 'TANDEM_UNAUTHENTICATED',
  /**
   * The client announced (PROTOCOL_QUERY_PARAM) a protocol version this server does not
   * speak; the message names the version the server supports (`/sharedb`: HTTP 400). Final:
   * the SDK stops reconnecting (its state turns 'closed') instead of retrying forever.
   */
  PROTOCOL_VERSION: 'TANDEM_PROTOCOL_VERSION',
  /** More than MAX_CONNECTIONS_PER_IP open connections from one address (at connect; `/sharedb`: HTTP 429). */
  TOO_MANY_CONNECTIONS: 'TANDEM_TOO_MANY_CONNECTIONS',
  /** An HTTP request, WebSocket upgrade or socket.io handshake from an Origin not in CORS_ORIGINS (HTTP 403). */
  ORIGIN_FORBIDDEN: 'TANDEM_ORIGIN_FORBIDDEN',

  // --- Plain HTTP ---
  /** An HTTP request for a path the server has no route for (HTTP 404). */
  NOT_FOUND: 'TANDEM_NOT_FOUND',
  /** An `/api/v1` request whose body, query parameters or path cannot be used as sent (HTTP 400); the message says which. */
  BAD_REQUEST: 'TANDEM_BAD_REQUEST',

  // --- Raised by the SDK itself, never sent by a server ---
  /** The client or document handle was closed. */
  CLOSED: 'TANDEM_CLOSED',
  /** A connection attempt failed without a code from the server (unreachable, transport error). */
  CONNECT_FAILED: 'TANDEM_CONNECT_FAILED',
  /** An op was submitted to a document that is not loaded or does not exist. */
  DOC_NOT_READY: 'TANDEM_DOC_NOT_READY',
  /** The offline outbox could not be read or written. */
  OUTBOX_FAILED: 'TANDEM_OUTBOX_FAILED',
  /**
   * A pending op was dropped because ShareDB had to reload the document (hard rollback), or an
   * offline edit (or part of one) could not be re-expressed: its target was removed meanwhile.
   */
  OP_DISCARDED: 'TANDEM_OP_DISCARDED',
  /** An error that came without any code (an unexpected exception); its message says what failed. */
  UNKNOWN: 'TANDEM_UNKNOWN',

  // --- The `tandem` command line (printed as `tandem: CODE: message`, exit status 1) ---
  /**
   * A configuration value or flag that cannot be used: the server's environment and flags
   * (at start, e.g. a public HOST without authentication), `tandem token`'s and `tandem load`'s
   * options.
   */
  BAD_CONFIG: 'TANDEM_BAD_CONFIG',
  /** `tandem serve` could not start for another reason (e.g. the port is taken, the store unreachable). */
  START_FAILED: 'TANDEM_START_FAILED',
  /** `tandem token` could not sign a token for a reason other than its options. */
  TOKEN_FAILED: 'TANDEM_TOKEN_FAILED',
  /** A `tandem load` run failed (its worker processes failed, or no client could connect). */
  LOAD_FAILED: 'TANDEM_LOAD_FAILED',
  /** `tandem` was run from a checkout that has not been built (`npm run build`). */
  NOT_BUILT: 'TANDEM_NOT_BUILT',
} as const;
/** One of TandemErrorCode's values. */
export type TandemErrorCode = (typeof TandemErrorCode)[keyof typeof TandemErrorCode];

/**
 * ShareDB's own codes that Tandem produces (its middleware and stores answer with them where
 * ShareDB would) or that clients are expected to handle. A subset of ShareDB's codes, for
 * typing and for README's table; any other ShareDB code keeps ShareDB's meaning.
 */
export const ShareDbErrorCode = {
  /** A message that is not a request ShareDB knows (unknown action, missing or mistyped fields). */
  BADLY_FORMED: 'ERR_MESSAGE_BADLY_FORMED',
  DOC_DOES_NOT_EXIST: 'ERR_DOC_DOES_NOT_EXIST',
  /** An op that does not apply to the document (its type's apply threw). */
  OP_NOT_APPLIED: 'ERR_OT_OP_NOT_APPLIED',
  TYPE_NOT_FOUND: 'ERR_DOC_TYPE_NOT_RECOGNIZED',
  ALREADY_CREATED: 'ERR_DOC_ALREADY_CREATED',
  /** A submit middleware refused the op on purpose (ShareDB's `request.rejectedError()`). */
  SUBMIT_REJECTED: 'ERR_OP_SUBMIT_REJECTED',
  /** The op became a no-op after transform and was not committed (not an error for clients). */
  NO_OP: 'ERR_NO_OP',
  /**
   * A resend of an op already committed (its acknowledgement was lost): ShareDB's client
   * takes it as the acknowledgement.
   */
  ALREADY_SUBMITTED: 'ERR_OP_ALREADY_SUBMITTED',
  /** ShareDB's own "ops needed to transform the submitted op are missing". */
  TRANSFORM_OPS_NOT_FOUND: 'ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND',
  /** The client's version is ahead of the server's (the server lost history). */
  VERSION_NEWER: 'ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT',
  /** Too many concurrent commits raced; the submit may succeed when retried. */
  MAX_SUBMIT_RETRIES: 'ERR_MAX_SUBMIT_RETRIES_EXCEEDED',
  /** A snapshot request at a version or time that is not a whole number ≥ 0 (milestone stores). */
  MILESTONE_ARGUMENT_INVALID: 'ERR_MILESTONE_ARGUMENT_INVALID',
  /**
   * A read withheld without telling the client: the server uses it to drop presence a
   * connection may not see. ShareDB never sends it to a client.
   */
  SILENT_READ_REJECTION: 'ERR_SNAPSHOT_READ_SILENT_REJECTION',
} as const;
/** One of ShareDbErrorCode's values. */
export type ShareDbErrorCode = (typeof ShareDbErrorCode)[keyof typeof ShareDbErrorCode];

export type ErrorCode = TandemErrorCode | ShareDbErrorCode | (string & {});

/** The shape of an error on the wire, as ShareDB sends it. */
export interface WireError {
  code: ErrorCode;
  message: string;
  /** TANDEM_RATE_LIMITED: how long to wait before sending again. */
  retryAfterMs?: number;
}

/**
 * How a TANDEM_RATE_LIMITED message states its wait. ShareDB forwards only an error's code
 * and message, and its client keeps only those: the wait travels in the message (servers
 * also lift it into `retryAfterMs` on the wire), read back with `retryAfterOf`.
 */
export function rateLimitedMessage(what: string, retryAfterMs: number): string {
  return `${what}: rate limited, retry after ${Math.max(1, Math.ceil(retryAfterMs))} ms`;
}

/** The wait a TANDEM_RATE_LIMITED message asks for, or null when it does not say. */
export function retryAfterOf(error: { message: string }): number | null {
  const match = /retry after (\d+) ms/.exec(error.message);
  return match ? Number(match[1]) : null;
}

/** The one error class Tandem throws or returns; `code` is stable, `message` is for people. */
export class TandemError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TandemError';
  }

  toJSON(): WireError {
    return { code: this.code, message: this.message };
  }
}
