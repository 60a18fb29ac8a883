import { TandemError, TandemErrorCode } from '../../client/protocol.js';

/**
 * A store driver's own failures (MongoDB's "Topology is closed", a lost connection) carry no
 * code a client can act on. This wraps a ShareDB DB or MilestoneDB so every callback error
 * without a code reaches clients as TANDEM_STORAGE_ERROR (transient: the SDK retries); coded
 * errors (ShareDB's, or sharedb-mongo's numeric ones) pass unchanged.
 */
export function withStorageErrorCodes<T extends object>(db: T): T {
  return new Proxy(db, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return function (this: unknown, ...args: unknown[]) {
        const last = args.length - 1;
        const callback = args[last];
        if (typeof callback === 'function') {
          args[last] = (err: unknown, ...results: unknown[]) =>
            (callback as (...a: unknown[]) => void)(err ? withStorageCode(err) : err, ...results);
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/**
 * `err` as it is when it carries a code, else TANDEM_STORAGE_ERROR with its message. Typed
 * Error for callbacks; a coded `{code, message}` object (ShareDB passes those) stays one.
 */
export function withStorageCode(err: unknown): Error {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== undefined && code !== null) return err as Error;
  const message = err instanceof Error ? err.message : String(err);
  return new TandemError(TandemErrorCode.STORAGE_ERROR, `the store failed: ${message}`);
}

/**
 * For stores whose driver codes are not for clients (PostgreSQL's SQLSTATEs, Node's
 * ECONNREFUSED): every failure becomes TANDEM_STORAGE_ERROR, except Tandem's own coded errors
 * and ShareDB's `ERR_…` ones, which pass unchanged. The message names the store and the
 * driver's reason (never the connection URL).
 */
export function asStorageFailure(err: unknown, store: string): Error {
  if (err instanceof TandemError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string' && /^(TANDEM|ERR)_/.test(code)) return err;
  // Node reports a refused connection to several addresses as an AggregateError without a message.
  const reason = err instanceof Error ? err.message || (typeof code === 'string' ? code : err.name) : String(err);
  return new TandemError(TandemErrorCode.STORAGE_ERROR, `${store} failed: ${reason}`);
}
