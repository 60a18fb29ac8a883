/**
 * What each `/api/v1` document request does (routes.ts maps paths and methods to these): a
 * ShareDB message sent through the request's WireSession, so the answer or refusal is the one
 * a socket client would get, turned into an HTTP status and JSON body.
 */
import { createHash } from 'node:crypto';
import * as json1 from 'ot-json1';
import { ShareDbErrorCode, TandemError, TandemErrorCode, type WireError } from '../../client/protocol.js';
import { JSON1_TYPE_URI } from '../../ot-types/index.js';
import type { Identity } from '../auth/identity.js';
import type { TandemBackend } from '../backend.js';
import type { CompactableStore } from '../storage/oplog-retention.js';
import { WireRefusal, type WireSession } from './wire-session.js';

/** Most ops or documents one page holds. */
export const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;
/** How long a presence read collects answers by default, and at most (ms). */
export const DEFAULT_PRESENCE_WAIT_MS = 300;
export const MAX_PRESENCE_WAIT_MS = 2000;

export type Json = Record<string, unknown>;
export interface Answer {
  status: number;
  body: unknown;
}

export function badRequest(message: string): TandemError {
  return new TandemError(TandemErrorCode.BAD_REQUEST, message);
}

/** The `{code, message}` a failure is answered with (a ShareDB refusal keeps its `retryAfterMs`). */
export function wireErrorOf(err: unknown): WireError & { retryAfterMs?: number } {
  if (err instanceof WireRefusal) return err.error;
  if (err instanceof TandemError) return err.toJSON();
  const code = (err as { code?: unknown }).code;
  return { code: typeof code === 'string' ? code : TandemErrorCode.UNKNOWN, message: (err as Error).message } as WireError;
}

function wholeNumber(value: string | null, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === null) return fallback;
  if (!/^\d+$/.test(value) || Number(value) > max) throw badRequest(`${name} must be a whole number from 0 to ${max}`);
  return Number(value);
}

/** `?at=`: milliseconds since the epoch, or an ISO 8601 date. */
function timestampOf(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isSafeInteger(ms) || ms < 0) throw badRequest('at must be milliseconds since 1970 or an ISO 8601 date');
  return ms;
}

interface Snapshot {
  v: number;
  type: string | null;
  data?: unknown;
}

function docBody(collection: string, id: string, snapshot: Snapshot): Json {
  return { collection, id, v: snapshot.v, type: snapshot.type, data: snapshot.data ?? null };
}

/** 404 for a document that does not exist (never created, or deleted: then with its version). */
function missing(collection: string, id: string, snapshot: Snapshot): Answer {
  const error: WireError = { code: ShareDbErrorCode.DOC_DOES_NOT_EXIST, message: `${collection}/${id} does not exist` } as WireError;
  return { status: 404, body: { error, v: snapshot.v } };
}

/**
 * The source id of an idempotent submit: derived from the key (and the user, whose tag a
 * source id must carry), so a retry — on any instance, after any restart — is the same op
 * to ShareDB, which commits an op of a given source and sequence number once.
 */
function idempotentSource(identity: Identity | null, key: string): string {
  const digest = createHash('sha256').update(key).digest('base64url').slice(0, 32);
  return identity ? `${identity.sourceTag}.idem-${digest}` : `idem-${digest}`;
}

export class DocRequests {
  constructor(
    readonly session: WireSession,
    readonly backend: TandemBackend,
    readonly identity: Identity | null,
  ) {}

  async fetch(collection: string, id: string): Promise<Snapshot> {
    const reply = await this.session.request({ a: 'f', c: collection, d: id }, (m) => m.a === 'f' && m.c === collection && m.d === id);
    return reply.data as Snapshot;
  }

  async fetchAt(collection: string, id: string, at: { v: number } | { ts: number }): Promise<Snapshot> {
    const rid = this.session.requestId();
    const message = 'v' in at ? { a: 'nf', id: rid, c: collection, d: id, v: at.v } : { a: 'nt', id: rid, c: collection, d: id, ts: at.ts };
    // ShareDB answers nf / nt with the snapshot's fields beside `a` and `id`.
    const reply = await this.session.request(message, (m) => m.a === message.a && m.id === rid);
    return { v: reply.v as number, type: (reply.type as string | null) ?? null, data: reply.data };
  }

  async getDoc(collection: string, id: string, query: URLSearchParams): Promise<Answer> {
    const v = query.get('v');
    const at = query.get('at');
    if (v !== null && at !== null) throw badRequest('give v or at, not both');
    const snapshot =
      v !== null
        ? await this.fetchAt(collection, id, { v: wholeNumber(v, 'v', 0) })
        : at !== null
          ? await this.fetchAt(collection, id, { ts: timestampOf(at) })
          : await this.fetch(collection, id);
    if (snapshot.type === null) return missing(collection, id, snapshot);
    return { status: 200, body: docBody(collection, id, snapshot) };
  }

  /** Ops [from, from + limit) with their metadata; the read rules apply op by op ('op' middleware). */
  async getOps(collection: string, id: string, query: URLSearchParams): Promise<Answer> {
    const from = wholeNumber(query.get('from'), 'from', 0);
    const limit = wholeNumber(query.get('limit'), 'limit', DEFAULT_PAGE, MAX_PAGE);
    // Through the wire first: id validation and the read rule, and the current version.
    const current = await this.fetch(collection, id);
    const to = Math.min(current.v, from + limit);
    const ops =
      from >= to
        ? []
        : await new Promise<Json[]>((resolve, reject) =>
            this.backend.getOps(this.session.agent as never, collection, id, from, to, { opsOptions: { metadata: true } }, (err, list) =>
              err ? reject(err) : resolve(list as unknown as Json[]),
            ),
          );
    return {
      status: 200,
      body: {
        collection,
        id,
        v: current.v,
        ops: ops.map((op) => {
          const m = (op.m ?? {}) as Json;
          const entry: Json = { v: op.v, src: op.src ?? null, seq: op.seq ?? null, time: m.ts ?? null, user: m.user ?? null };
          if (op.create) entry.create = op.create;
          if (op.del) entry.del = true;
          if (op.op !== undefined) entry.op = op.op;
          return entry;
        }),
        next: to < current.v ? to : null,
      },
    };
  }

  /**
   * Submits one op (or create, or delete) at `v` (default: the current version), as its own
   * source. With an Idempotency-Key the source is the key's, and a key already committed
   * answers with the version it was committed at instead of applying again.
   */
  async submit(collection: string, id: string, op: Json, key: string | null, baseV?: number): Promise<Answer> {
    const current = await this.fetch(collection, id);
    const v = baseV ?? current.v;
    const src = key === null ? this.session.clientId : idempotentSource(this.identity, key);
    const committedAs = () =>
      new Promise<number | null>((resolve, reject) =>
        this.backend.db.getCommittedOpVersion(collection, id, current as never, { src, seq: 1, v } as never, null, (err, version) =>
          err ? reject(err) : resolve(version ?? null),
        ),
      );
    const duplicate = (version: number | null): Answer => ({
      status: 200,
      body: { collection, id, v: version === null ? null : version + 1, duplicate: true },
    });
    // Read after the fetch: a commit of this key that the check misses happened after the
    // fetch, so the submit below transforms past it and ShareDB answers "already submitted".
    if (key !== null) {
      const committed = await committedAs();
      if (committed !== null) return duplicate(committed);
      // Committed so long ago that compaction removed it (OPLOG_RETENTION): still once.
      const store = this.backend.db as Partial<CompactableStore>;
      const pruned = typeof store.prunedSeq === 'function' ? await store.prunedSeq(collection, id, src) : null;
      if (pruned !== null) return duplicate(null);
    }
    const message = { a: 'op', c: collection, d: id, v, src, seq: 1, ...op };
    try {
      const ack = await this.session.request(
        message,
        (m) => m.a === 'op' && m.c === collection && m.d === id && m.src === src && m.seq === 1,
      );
      return { status: op.create ? 201 : 200, body: { collection, id, v: (ack.v as number) + 1, duplicate: false } };
    } catch (err) {
      if (key !== null && wireErrorOf(err).code === ShareDbErrorCode.ALREADY_SUBMITTED) return duplicate(await committedAs());
      throw err;
    }
  }

  /** The document as it was at `v`, written as one new op (history keeps every version). */
  async restore(collection: string, id: string, body: Json, key: string | null): Promise<Answer> {
    if (!Number.isSafeInteger(body.v) || (body.v as number) < 1) throw badRequest('restore needs {"v": <version ≥ 1>}');
    const past = await this.fetchAt(collection, id, { v: body.v as number });
    const current = await this.fetch(collection, id);
    if (past.type === null) throw badRequest(`${collection}/${id} did not exist at version ${body.v as number}`);
    if (past.type !== JSON1_TYPE_URI && past.type !== 'json1') throw badRequest('restore works on json1 documents');
    const op: Json =
      current.type === null
        ? { create: { type: JSON1_TYPE_URI, data: past.data } }
        : { op: json1.replaceOp([], true, past.data as json1.Doc) };
    const answer = await this.submit(collection, id, op, key, current.v);
    return { status: 200, body: { ...(answer.body as Json), restoredFrom: body.v } };
  }

  /**
   * Who shows presence on the document. ShareDB keeps no presence state: it is broadcast,
   * and a new subscriber asks every holder to send theirs again. So this subscribes as a
   * client would and reports what the holders sent within `wait` ms, the latest per
   * presence id, without those that cleared theirs.
   */
  async presence(collection: string, id: string, query: URLSearchParams): Promise<Answer> {
    const wait = wholeNumber(query.get('wait'), 'wait', DEFAULT_PRESENCE_WAIT_MS, MAX_PRESENCE_WAIT_MS);
    // The read rule, the id checks and a 404 first: a presence refusal to a subscriber is silent.
    const snapshot = await this.fetch(collection, id);
    if (snapshot.type === null) return missing(collection, id, snapshot);
    const channel = `${collection}.${id}`;
    const seen = this.session.watch((m) => m.a === 'p' && m.ch === channel && !m.error);
    await this.session.request({ a: 'ps', ch: channel, seq: 1 }, (m) => m.a === 'ps' && m.ch === channel);
    await new Promise((resolve) => setTimeout(resolve, wait));
    const latest = new Map<string, Json>();
    for (const m of seen) latest.set(String(m.id), m);
    const present = [...latest.values()]
      .filter((m) => m.p !== null && m.p !== undefined)
      .map((m) => ({ id: m.id, connection: m.src ?? null, v: m.v ?? null, value: m.p }));
    return { status: 200, body: { collection, id, v: snapshot.v, present } };
  }

  /**
   * Ids and versions in id order. A caller who may read the whole collection pages in the
   * store ($sort, $limit); for anyone else the access rules refuse those (they would depend
   * on unreadable documents), so the query asks only for ids after `after`, gets back what
   * the caller may read (within MAX_QUERY_RESULTS, else TANDEM_QUERY_TOO_LARGE) and is paged here.
   */
  async list(collection: string, query: URLSearchParams): Promise<Answer> {
    const limit = wholeNumber(query.get('limit'), 'limit', DEFAULT_PAGE, MAX_PAGE);
    const after = query.get('after');
    const policy = this.backend.access;
    const whole = policy.open || policy.readsWholeCollection(this.identity, collection);
    const rid = this.session.requestId();
    const q: Json = whole ? { $sort: { _id: 1 }, $limit: limit + 1 } : {};
    if (after !== null) q._id = { $gt: after };
    const reply = await this.session.request({ a: 'qf', id: rid, c: collection, q }, (m) => m.a === 'qf' && m.id === rid);
    const docs = (reply.data as Array<{ d: string; v: number }>).map((s) => ({ id: s.d, v: s.v }));
    if (!whole) docs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const page = docs.slice(0, limit);
    return { status: 200, body: { collection, docs: page, next: docs.length > limit ? page[page.length - 1]!.id : null } };
  }
}
