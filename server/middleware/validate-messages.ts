import type ShareDB from 'sharedb';
import { JSON1_TYPE_NAME, JSON1_TYPE_URI } from '../../ot-types/index.js';
import { ShareDbErrorCode, TandemError, TandemErrorCode } from '../../client/protocol.js';
import { isWellFormedText } from '../../ot-types/validate-op.js';

/** ShareDB's error shape; ShareDB replies `{code, message}` for an error passed to next(). */
function badlyFormed(message: string): { code: string; message: string } {
  return { code: ShareDbErrorCode.BADLY_FORMED, message };
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
    // ShareDB builds an op only from a truthy create or del (agent.js createClientOp); a null
    // one would reach `op.seq` of nothing and answer without a code.
    if (kinds[0] === 'create' && !message.create) return 'Invalid create';
    if (kinds[0] === 'del' && !message.del) return 'Invalid del';
    if (message.v !== undefined && message.v !== null && !Number.isSafeInteger(message.v)) return 'Invalid version';
  }
  if ((action === 'f' || action === 's' || action === 'nf') && message.v != null && !Number.isSafeInteger(message.v)) {
    return 'Invalid version';
  }
  return null;
}

/**
 * A create of any type but json1 — one ShareDB knows (json0) or not (a typo) — is refused
 * before ShareDB looks the type up, so every such create gets the same code.
 */
function unsupportedType(message: Record<string, unknown>): { code: string; message: string } | null {
  if (message.a !== 'op' || typeof message.create !== 'object' || message.create === null) return null;
  const type = (message.create as { type?: unknown }).type;
  if (type === JSON1_TYPE_NAME || type === JSON1_TYPE_URI) return null;
  return {
    code: TandemErrorCode.UNSUPPORTED_TYPE,
    message: `documents must use the json1 type ("${JSON1_TYPE_URI}"), got ${JSON.stringify(type)?.slice(0, 100)}`,
  };
}

/**
 * Refuses malformed client messages with ERR_MESSAGE_BADLY_FORMED, and creates of other types
 * with TANDEM_UNSUPPORTED_TYPE, before ShareDB acts on them.
 */
export function useMessageValidation(backend: ShareDB): void {
  backend.use('receive', (context, next) => {
    // `data` is the parsed client message; MessageStream guarantees a plain object.
    const message = context.data as Record<string, unknown>;
    const problem = checkClientMessage(message);
    next(problem ? badlyFormed(problem) : (unsupportedType(message) ?? undefined));
  });
}

/** Code points in `text`, counted only as far as `limit + 1` (enough to know it is too long). */
function longerThan(text: string, limit: number): boolean {
  if (text.length <= limit) return false;
  let n = 0;
  for (const _ of text) if (++n > limit) return true;
  return false;
}

function nameProblem(what: string, name: unknown, maxLength: number): string | null {
  if (typeof name !== 'string') return null;
  if (!isWellFormedText(name)) return `${what} is not well-formed Unicode (a lone surrogate)`;
  if (longerThan(name, maxLength)) return `${what} is longer than ${maxLength} characters`;
  return null;
}

/** The document ids a bulk request names: a list, or an object keyed by id (bulk subscribe). */
function bulkIds(b: unknown): string[] {
  if (Array.isArray(b)) return b.filter((id): id is string => typeof id === 'string');
  return typeof b === 'object' && b !== null ? Object.keys(b) : [];
}

/** The document ids of a query resubscribe's known results (`r: [[id, version], …]`). */
function resultIds(r: unknown): string[] {
  if (!Array.isArray(r)) return [];
  return r.flatMap((entry) => (Array.isArray(entry) && typeof entry[0] === 'string' ? [entry[0]] : []));
}

/**
 * Returns why a client message names a collection, document id or presence channel the
 * server cannot store or route faithfully, or null. Names must be well-formed Unicode: a
 * store encodes them as UTF-8, where "\ud800", "\udc00" and "\ufffd" all become U+FFFD and so
 * one row, while subscriptions and channels keep the original strings. And they are bounded
 * (`maxIdLength` code points each), since they are keys of maps, channels and index entries.
 */
export function checkMessageNames(message: Record<string, unknown>, maxIdLength: number): string | null {
  const problems = [
    nameProblem('collection name', message.c, maxIdLength),
    nameProblem('document id', message.d, maxIdLength),
    // `collection.id`: the presence channel of a document.
    nameProblem('presence channel', message.ch, maxIdLength * 2 + 1),
    message.a === 'p' ? nameProblem('presence id', message.id, maxIdLength) : null,
    ...bulkIds(message.b).map((id) => nameProblem('document id', id, maxIdLength)),
    ...resultIds(message.r).map((id) => nameProblem('document id', id, maxIdLength)),
  ];
  return problems.find((problem) => problem !== null) ?? null;
}

/**
 * Refuses, with TANDEM_INVALID_ID, messages naming ids that are not well-formed Unicode or
 * longer than `maxIdLength`, before ShareDB reads or writes anything under them. Applies to
 * every connection, the server's own included: the store would merge such ids for anyone.
 */
export function useIdValidation(backend: ShareDB, maxIdLength: number): void {
  backend.use('receive', (context, next) => {
    const problem = checkMessageNames(context.data as Record<string, unknown>, maxIdLength);
    // A plain {code, message}: for an Error, ShareDB would format and log its stack.
    next(problem ? new TandemError(TandemErrorCode.INVALID_ID, problem).toJSON() : undefined);
  });
}
