/**
 * Hot documents' current snapshots in memory (SNAPSHOT_CACHE_MB), so a commit to a large
 * document neither reads nor parses it. The budget is counted in bytes of JSON: exact when a
 * snapshot is read or written whole, grown by each op's JSON size in between (an estimate
 * that only errs high while a document shrinks), plus the entry's tail of recent ops (at
 * most OP_TAIL_LENGTH ops and OP_TAIL_BYTES). The least recently used leave first.
 *
 * An entry is only ever trusted at a version the store confirms (see SqliteDocuments), so
 * several processes on one store stay correct: a stale entry is caught up from the op log.
 * Snapshots in here are never mutated: ShareDB's apply replaces `data` (json1 copies the
 * containers it changes), and every caller gets its own shell and metadata object.
 */
import { JSON1_TYPE_NAME, JSON1_TYPE_URI } from '../../ot-types/json1-type.js';
import type { QuerySnapshot } from './mingo-query.js';

export interface SnapshotCacheOptions {
  /** SNAPSHOT_CACHE_MB in bytes; 0 turns the cache off: every commit writes the whole snapshot. */
  cacheBytes: number;
  /** SNAPSHOT_FLUSH_OPS: most versions a snapshot row may lag its document. */
  flushOps: number;
  /** SNAPSHOT_FLUSH_MS: longest a cached version stays unwritten (checked every flushMs / 4). */
  flushMs: number;
}

export const DEFAULT_SNAPSHOT_CACHE: Readonly<SnapshotCacheOptions> = Object.freeze({
  cacheBytes: 128 * 1024 * 1024,
  flushOps: 1000,
  flushMs: 5000,
});

export interface CachedDoc {
  /** The current snapshot, metadata included (`m` null once deleted). */
  readonly snapshot: QuerySnapshot;
  /** JSON bytes of the snapshot and its op tail (see the budget above). */
  readonly bytes: number;
  /** Version of the snapshot row this process last knew to be in the store. */
  readonly storedV: number;
  /** When the first version past `storedV` was cached (ms), null when none is. */
  readonly dirtySince: number | null;
  /**
   * The stored JSON of the latest committed ops, versions [tail.from, snapshot.v): what a
   * submit behind by a few versions is transformed past, read without the store. Committed
   * ops never change, so the tail stays true even while the entry itself lags the head.
   */
  readonly tail?: OpTail;
  /**
   * The validation epoch (SqliteDocuments) in which this entry was read from the store or
   * written by this connection: within that epoch no other connection has committed, so the
   * entry is the head without reading it again.
   */
  readonly epoch?: number;
}

/** Ops [from, from + ops.length) of one document, as stored (JSON). */
export interface OpTail {
  from: number;
  ops: string[];
  /** Their JSON length, counted in the entry's bytes. */
  bytes: number;
}

/** Most ops a cached document keeps in its tail. */
export const OP_TAIL_LENGTH = 64;
/** Most JSON bytes of a tail beyond its newest op (large pastes do not pile up). */
export const OP_TAIL_BYTES = 256 * 1024;

/** `tail` with `json`, the op at version `v`, appended; a new tail when `tail` does not end at `v`. */
export function extendTail(tail: OpTail | undefined, v: number, json: string): OpTail {
  if (!tail || tail.from + tail.ops.length !== v) return { from: v, ops: [json], bytes: json.length };
  // A new array: an entry keeps its tail as it was if the write it belongs to is undone.
  const ops = tail.ops.length < OP_TAIL_LENGTH ? [...tail.ops, json] : [...tail.ops.slice(OP_TAIL_LENGTH / 2), json];
  let bytes = 0;
  for (const op of ops) bytes += op.length;
  let drop = 0;
  while (bytes > OP_TAIL_BYTES + json.length && drop < ops.length - 1) bytes -= ops[drop++]!.length;
  return { from: v + 1 - ops.length + drop, ops: drop > 0 ? ops.slice(drop) : ops, bytes };
}

export class SnapshotCache {
  private readonly docs = new Map<string, CachedDoc>();
  private total = 0;

  constructor(readonly maxBytes: number) {}

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** The entry, now the most recently used. */
  get(key: string): CachedDoc | undefined {
    const doc = this.docs.get(key);
    if (doc) {
      this.docs.delete(key);
      this.docs.set(key, doc);
    }
    return doc;
  }

  /** The entry, leaving the order as it is. */
  peek(key: string): CachedDoc | undefined {
    return this.docs.get(key);
  }

  set(key: string, doc: CachedDoc): void {
    this.delete(key);
    this.docs.set(key, doc);
    this.total += doc.bytes;
  }

  /** Replaces an entry without making it the most recently used (a background write). */
  replace(key: string, doc: CachedDoc): void {
    const old = this.docs.get(key);
    if (!old) return;
    this.docs.set(key, doc);
    this.total += doc.bytes - old.bytes;
  }

  delete(key: string): void {
    const old = this.docs.get(key);
    if (!old) return;
    this.docs.delete(key);
    this.total -= old.bytes;
  }

  /**
   * Least recently used entries past the budget, oldest first; the newest entry always stays
   * (a document larger than the whole budget is still served from memory while it is hot).
   */
  overBudget(): Array<[string, CachedDoc]> {
    const out: Array<[string, CachedDoc]> = [];
    let excess = this.total - this.maxBytes;
    if (excess <= 0) return out;
    let left = this.docs.size;
    for (const entry of this.docs) {
      if (excess <= 0 || left-- <= 1) break;
      out.push(entry);
      excess -= entry[1].bytes;
    }
    return out;
  }

  /** Forgets every entry's op tail (op-log compaction removed ops: reads must see that). */
  dropTails(): void {
    for (const [key, doc] of this.docs) if (doc.tail) this.replace(key, { ...doc, bytes: doc.bytes - doc.tail.bytes, tail: undefined });
  }

  /** Entries holding versions the store's snapshot row does not have yet. */
  dirty(): Array<[string, CachedDoc]> {
    return [...this.docs].filter(([, doc]) => doc.dirtySince !== null);
  }

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.docs.size;
  }
}

/**
 * Types whose apply never mutates the document it is given, so a cached document can be
 * shared: json1 copies each container on an op's path and returns new strings (its text and
 * number subtypes). ShareDB's default json0 (and rich-text) change the document in place:
 * their documents are copied for every caller, as ShareDB's MemoryDB does for all.
 */
const SHARED_DATA_TYPES = new Set([JSON1_TYPE_URI, JSON1_TYPE_NAME]);

/** A caller's own copy: the shell and the metadata are copied, `data` shared where safe (above). */
export function shellOf(snapshot: QuerySnapshot, withMeta: boolean): QuerySnapshot {
  const shared = snapshot.type === null || SHARED_DATA_TYPES.has(snapshot.type) || snapshot.data === undefined;
  return {
    id: snapshot.id,
    v: snapshot.v,
    type: snapshot.type,
    data: shared ? snapshot.data : JSON.parse(JSON.stringify(snapshot.data)),
    m: withMeta && snapshot.m ? { ...snapshot.m } : null,
  };
}

/**
 * What a cache keeps of a snapshot a commit stored: a shell of its own with `id` (ShareDB's
 * snapshot need not carry it, its own tests commit without one); no data or metadata once
 * `deleted`.
 */
export function committedCopy(id: string, snapshot: QuerySnapshot, deleted: boolean): QuerySnapshot {
  return { ...shellOf(snapshot, !deleted), id, data: deleted ? undefined : snapshot.data };
}
