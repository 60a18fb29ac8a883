/**
 * Access rules on every way into ShareDB: reads (fetch, subscribe, bulk, snapshot at a
 * version or time, ops sent to a subscriber), queries (filtered before ShareDB sees the
 * results; metadata and counts over unreadable documents refused), create / write / delete
 * (rules at 'submit', read-only paths and the hook at 'commit' with the document before and
 * after), presence (sent and received), and token expiry. One place per ShareDB action.
 */
import type ShareDB from 'sharedb';
import { ShareDbErrorCode, TandemError, TandemErrorCode } from '../../client/protocol.js';
import type { Path } from '../../ot-types/index.js';
import type { AccessPolicy } from '../auth/access.js';
import { agentState, identityOf, type Agent } from '../auth/agent-identity.js';
import { hasExpired } from '../auth/expiry-timer.js';
import type { AccessAction } from '../auth/rules.js';
import { docKey } from '../doc-key.js';

/** ShareDB's error code for a read refused without telling the client (dropped presence). */
export const SILENT_REFUSAL = ShareDbErrorCode.SILENT_READ_REJECTION;

function forbidden(message: string): TandemError {
  return new TandemError(TandemErrorCode.FORBIDDEN, message);
}

function expired(): TandemError {
  return new TandemError(TandemErrorCode.TOKEN_EXPIRED, 'the token of this connection expired; refresh it and send again');
}

/**
 * The application's own connections (`backend.connect()` in the server process) are not
 * clients: access rules do not apply to them.
 */
export function isServerSide(agent: Agent | null | undefined): boolean {
  return !agent || (agent.stream as { isServer?: boolean } | undefined)?.isServer === true;
}

/** Read decision for one document on one connection; allowed ones are remembered. */
async function canRead(policy: AccessPolicy, agent: Agent, collection: string, id: string, data?: unknown): Promise<boolean> {
  const state = agentState(agent);
  const key = docKey(collection, id);
  if (state.readable?.get(key)) return true;
  const identity = identityOf(agent);
  const allowed = policy.hasHook
    ? await policy.allows({ identity, collection, id, action: 'read', before: data })
    : policy.rulesAllow(identity, collection, id, 'read');
  if (allowed) (state.readable ??= new Map()).set(key, true);
  return allowed;
}

/**
 * The document a presence channel `collection.id` names. Collection names cannot contain
 * dots (validate-messages.ts), so the first dot splits it; ids may hold dots.
 */
function channelDoc(channel: unknown): [string, string] | null {
  if (typeof channel !== 'string') return null;
  const dot = channel.indexOf('.');
  return dot > 0 && dot < channel.length - 1 ? [channel.slice(0, dot), channel.slice(dot + 1)] : null;
}

/** Presence is only for documents: its channel must name one this connection may read. */
async function canUseChannel(policy: AccessPolicy, agent: Agent, channel: unknown): Promise<boolean> {
  const doc = channelDoc(channel);
  return doc !== null && canRead(policy, agent, doc[0], doc[1]);
}

/**
 * True when a query may read document metadata: a key or field name whose path starts at
 * `_m`, a field reference (`$…`) with an `_m` segment (`$_m.src`, `$$ROOT._m.mtime`), or a reference to the
 * whole stored document (`$$ROOT`, `$$CURRENT`), which holds `_m`.
 */
export function queryMentionsMetadata(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === 'string') {
      // A field name (`$distinct: {field: '_m.mtime'}`) or a reference to one.
      if (/^_m(\.|$)/.test(item)) return true;
      if (item.startsWith('$') && (/(^\$*|\.)_m(\.|$)/.test(item) || /^\$\$(ROOT|CURRENT)$/.test(item))) return true;
    } else if (Array.isArray(item)) {
      stack.push(...item);
    } else if (typeof item === 'object' && item !== null) {
      for (const [key, inner] of Object.entries(item)) {
        if (/^_m(\.|$)/.test(key)) return true;
        stack.push(inner);
      }
    }
  }
  return false;
}

/**
 * Query keys whose results depend on documents the user may not read: figures over every
 * match (counts, distinct values), and paging — filtering happens after the store applied
 * `$limit`/`$skip`, so whether a readable document makes the page would tell about the
 * unreadable ones before it.
 */
const WHOLE_COLLECTION_KEYS = ['$count', '$distinct', '$aggregate', '$mapReduce', '$limit', '$skip'];

function actionOf(op: { create?: unknown; del?: unknown }): AccessAction {
  return op.create ? 'create' : op.del ? 'delete' : 'write';
}

function valueAt(data: unknown, path: Path): unknown {
  let value = data;
  for (const key of path) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

/** json1 shares untouched subtrees between the document before and after: `===` is the common case. */
function sameJson(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** The document before the op, kept from 'apply' (ShareDB replaces snapshot.data on apply). */
const before = new WeakMap<object, unknown>();

export function useAccessControl(backend: ShareDB, policy: AccessPolicy): void {
  backend.use('receive', (context, next) => {
    if (hasExpired(identityOf(context.agent))) return next(expired());
    const message = context.data;
    // Presence: sending (p), subscribing (ps) and asking others to re-send (pr).
    if (policy.open || isServerSide(context.agent) || (message.a !== 'p' && message.a !== 'ps' && message.a !== 'pr')) return next();
    // Presence: the channel, and for document presence the document it names.
    const checks = [canUseChannel(policy, context.agent, message.ch)];
    if (typeof message.c === 'string' && typeof message.d === 'string') checks.push(canRead(policy, context.agent, message.c, message.d));
    Promise.all(checks).then(
      (results) => next(results.every(Boolean) ? undefined : forbidden(`presence on ${String(message.ch)} is not allowed`)),
      () => next(forbidden('presence check failed')),
    );
  });

  backend.use('readSnapshots', (context, next) => {
    if (policy.open || isServerSide(context.agent)) return next();
    const request = context as typeof context & { rejectSnapshotRead(snapshot: ShareDB.Snapshot, error: unknown): void };
    Promise.all(
      context.snapshots.map(async (snapshot) => {
        if (!(await canRead(policy, context.agent, context.collection, snapshot.id, snapshot.data))) {
          request.rejectSnapshotRead(snapshot, forbidden(`reading ${context.collection}/${snapshot.id} is not allowed`));
        }
      }),
    ).then(
      () => next(),
      () => next(forbidden('read check failed')),
    );
  });

  // Ops sent to a client (subscriptions, catch-up, ops since a version) never pass
  // readSnapshots: the same read decision applies to them, and nothing goes to a connection
  // whose token expired (it is closed after a grace period: ExpiryTimer).
  backend.use('op', (context, next) => {
    if (hasExpired(identityOf(context.agent))) return next(expired());
    if (policy.open || isServerSide(context.agent)) return next();
    canRead(policy, context.agent, context.collection, context.id).then(
      (allowed) => next(allowed ? undefined : forbidden(`reading ${context.collection}/${context.id} is not allowed`)),
      () => next(forbidden('read check failed')),
    );
  });

  backend.use('sendPresence', (context, next) => {
    if (hasExpired(identityOf(context.agent))) return next({ code: SILENT_REFUSAL, message: 'token expired' });
    if (policy.open || isServerSide(context.agent)) return next();
    canUseChannel(policy, context.agent, context.presence.ch).then(
      (allowed) => next(allowed ? undefined : { code: SILENT_REFUSAL, message: 'presence not for this client' }),
      () => next({ code: SILENT_REFUSAL, message: 'presence check failed' }),
    );
  });

  backend.use('query', (context, next) => {
    if (!isServerSide(context.agent) && queryMentionsMetadata(context.query))
      return next(forbidden('queries cannot read document metadata (_m)'));
    if (policy.open || isServerSide(context.agent)) return next();
    const query = context.query as Record<string, unknown> | null;
    const used = query !== null && typeof query === 'object' ? WHOLE_COLLECTION_KEYS.filter((key) => key in query) : [];
    if (used.length > 0 && !policy.readsWholeCollection(identityOf(context.agent), context.collection)) {
      return next(forbidden(`${used.join(', ')} would depend on documents this user cannot read`));
    }
    next();
  });

  backend.use('submit', (context, next) => {
    if (policy.open || isServerSide(context.agent)) return next();
    const action = actionOf(context.op as { create?: unknown; del?: unknown });
    if (!policy.rulesAllow(identityOf(context.agent), context.collection, context.id, action)) {
      return next(forbidden(`${action} on ${context.collection}/${context.id} is not allowed`));
    }
    next();
  });

  backend.use('apply', (context, next) => {
    if (!policy.open && !isServerSide(context.agent) && context.snapshot) before.set(context, context.snapshot.data);
    next();
  });

  backend.use('commit', (context, next) => {
    const identity = identityOf(context.agent);
    const op = context.op as { op?: unknown; create?: unknown; del?: unknown; m?: Record<string, unknown> };
    // Who wrote it, kept with the op for history (ShareDB stores `m` with the op).
    if (identity && op.m) op.m.user = identity.sub;
    if (policy.open || isServerSide(context.agent)) return next();
    const previous = before.get(context);
    const after = context.snapshot?.data;
    if ('op' in op) {
      for (const path of policy.readOnlyPaths(context.collection)) {
        if (!sameJson(valueAt(previous, path), valueAt(after, path))) {
          return next(forbidden(`${JSON.stringify(path)} is read-only in ${context.collection}`));
        }
      }
    }
    if (!policy.hasHook) return next();
    const action = actionOf(op);
    const payload = op.create ?? op.del ?? op.op;
    policy
      .allows({
        identity,
        collection: context.collection,
        id: context.id,
        action,
        op: payload,
        before: previous,
        after: action === 'delete' ? undefined : after,
      })
      .then(
        (allowed) => next(allowed ? undefined : forbidden(`${action} on ${context.collection}/${context.id} is not allowed`)),
        () => next(forbidden('access check failed')),
      );
  });
}

/**
 * Wraps a query's DB so results and polls only ever hold documents this connection may read.
 * ShareDB would otherwise fail a whole query on one unreadable result (readSnapshots), or
 * leak ids through subscription diffs.
 */
export function readableOnly(db: ShareDB.DB, policy: AccessPolicy, agent: Agent): ShareDB.DB {
  // The DB adapter API is callback-based and loosely typed upstream: a typed boundary here.
  type Callback = (err: unknown, ...results: unknown[]) => void;
  const inner = db as unknown as Record<string, (...args: unknown[]) => void>;
  const wrapped = Object.create(db) as Record<string, unknown>;
  const keep = async (collection: string, ids: string[], data?: unknown[]): Promise<boolean[]> =>
    Promise.all(ids.map((id, i) => canRead(policy, agent, collection, id, data?.[i])));
  wrapped.query = (collection: string, query: unknown, fields: unknown, options: unknown, callback: Callback) =>
    inner.query!.call(db, collection, query, fields, options, (err: unknown, snapshots: ShareDB.Snapshot[], extra: unknown) => {
      if (err) return callback(err);
      keep(
        collection,
        snapshots.map((s) => s.id),
        snapshots.map((s) => s.data),
      ).then(
        (allowed) =>
          callback(
            null,
            snapshots.filter((_, i) => allowed[i]),
            extra,
          ),
        (e: unknown) => callback(e),
      );
    });
  wrapped.queryPoll = (collection: string, query: unknown, options: unknown, callback: Callback) =>
    inner.queryPoll!.call(db, collection, query, options, (err: unknown, ids: string[], extra: unknown) => {
      if (err) return callback(err);
      keep(collection, ids).then(
        (allowed) =>
          callback(
            null,
            ids.filter((_, i) => allowed[i]),
            extra,
          ),
        (e: unknown) => callback(e),
      );
    });
  wrapped.queryPollDoc = (collection: string, id: string, query: unknown, options: unknown, callback: Callback) =>
    inner.queryPollDoc!.call(db, collection, id, query, options, (err: unknown, matches: boolean) => {
      if (err || !matches) return callback(err, false);
      canRead(policy, agent, collection, id).then(
        (allowed) => callback(null, allowed),
        (e: unknown) => callback(e),
      );
    });
  return wrapped as unknown as ShareDB.DB;
}
