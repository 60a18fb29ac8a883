import type ShareDB from 'sharedb';

/** ShareDB's error shape; ShareDB replies `{code, message}` for an error passed to next(). */
function badlyFormed(message: string): { code: string; message: string } {
  return { code: 'ERR_MESSAGE_BADLY_FORMED', message };
}

/** Actions that name one document by `c` (collection) and `d` (id). */
const DOC_ACTIONS = new Set(['f', 's', 'u', 'op', 'nf', 'nt']);
/** Actions that name a collection only. */
const COLLECTION_ACTIONS = new Set(['qf', 'qs', 'bf', 'bs', 'bu']);

function isName(value: unknown): boolean {
  return typeof value === 'string' && value.length > 0;
}

/**
 * Collections cannot contain dots: ShareDB names a document's pub/sub and presence channel
 * `collection.id`, so `a.b`/`c` and `a`/`b.c` would share one, and access rules could not
 * tell which document a presence channel is about.
 */
function isCollection(value: unknown): boolean {
  return isName(value) && !(value as string).includes('.');
}

/**
 * Returns why a client message is malformed, or null. ShareDB checks `c` and `d` only when
 * present and reads `op.seq` before checking that an op message carries an op, so such
 * messages reached the store or answered without a code; they are refused here first.
 */
export function checkClientMessage(message: Record<string, unknown>): string | null {
  const action = message.a;
  if (typeof action !== 'string') return 'Invalid or unknown message';
  if (DOC_ACTIONS.has(action)) {
    if (!isCollection(message.c)) return 'Invalid collection';
    if (!isName(message.d)) return 'Invalid id';
  } else if (COLLECTION_ACTIONS.has(action) && !isCollection(message.c)) {
    return 'Invalid collection';
  }
  if (action === 'op') {
    const kinds = ['op', 'create', 'del'].filter((k) => message[k] !== undefined);
    if (kinds.length !== 1) return 'Op message must carry exactly one of op, create or del';
    if (message.v !== undefined && message.v !== null && !Number.isSafeInteger(message.v)) return 'Invalid version';
  }
  if ((action === 'f' || action === 's' || action === 'nf') && message.v != null && !Number.isSafeInteger(message.v)) {
    return 'Invalid version';
  }
  return null;
}

/** Refuses malformed client messages with ERR_MESSAGE_BADLY_FORMED before ShareDB acts on them. */
export function useMessageValidation(backend: ShareDB): void {
  backend.use('receive', (context, next) => {
    // `data` is the parsed client message; MessageStream guarantees a plain object.
    const problem = checkClientMessage(context.data as Record<string, unknown>);
    next(problem ? badlyFormed(problem) : undefined);
  });
}
