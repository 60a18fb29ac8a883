/**
 * ShareDB's DB callback API over a store's own reads and writes, written once for SqliteDB
 * (synchronous: libsql) and PostgresDB (promises): which reads return metadata, how a
 * resent op is looked up, and that every answer goes through the store's `deliver`.
 */
import ShareDB from 'sharedb';
import type { QuerySnapshot } from './mingo-query.js';
import { withQueries, type Callback } from './query-methods.js';

export type { Callback } from './query-methods.js';

/** An op as ShareDB hands it to the store and reads it back. */
export interface StoredOp {
  v: number;
  src?: string;
  seq?: number;
  m?: unknown;
  [key: string]: unknown;
}

/**
 * A store that can serve a submit's snapshot from its cache without first checking that no
 * other process wrote the file, when told the version each submitted op was built on.
 *
 * A cached entry behind the store's head is safe for a submit whose op is not ahead of it:
 * the commit's version check fails and ShareDB retries on a fresh read. Only an op ahead of
 * the entry (its client learnt of a newer version elsewhere) would meet ShareDB's "op
 * version newer than current snapshot" error, which is final: told of it, the store reads
 * the head instead. TandemBackend calls this before every submit; a store never told keeps
 * its check for every read.
 */
export interface VersionHintedStore {
  expectVersion(collection: string, id: string, opVersion: unknown): void;
}

/** A store's answer: a value (libsql) or a promise of one (pg). */
export type Answer<T> = T | Promise<T>;

/** `{$submit: true}` is ShareDB's "I am about to commit": the metadata must come back whole. */
function wantsMetadata(fields: Record<string, unknown> | null, options: { metadata?: boolean } | null): boolean {
  return Boolean(fields?.$submit || options?.metadata);
}

/** A ShareDB DB whose stores supply `deliver` and the reads and writes below. */
export abstract class StoreDB extends withQueries(ShareDB.DB) {
  override projectsSnapshots = false; // ShareDB's Backend applies projections, as for MemoryDB

  /**
   * Runs `work` unless the store is closed, and hands its result or error to `callback`,
   * never synchronously (ShareDB expects asynchronous callbacks).
   */
  protected abstract deliver<T>(callback: Callback<T>, work: () => Answer<T>): void;

  /** Stores `op` and the `snapshot` it leads to; false (not an error) when another writer got there first: ShareDB retries. */
  protected abstract commitOp(collection: string, id: string, op: StoredOp, snapshot: QuerySnapshot): Answer<boolean>;

  /** `forSubmit`: ShareDB reads it to commit on it (see VersionHintedStore). */
  protected abstract readSnapshot(collection: string, id: string, withMeta: boolean, forSubmit: boolean): Answer<QuerySnapshot>;

  protected abstract readSnapshots(collection: string, ids: string[], withMeta: boolean): Answer<Record<string, QuerySnapshot>>;

  /**
   * Ops in [from, to), `to` null meaning "to the current version". A `to` past the current
   * version returns what exists (ShareDB then reports the version as too new); a hole in
   * the range is TANDEM_MISSING_OPS, as in MemoryDB.
   */
  protected abstract readOpsBetween(
    collection: string,
    id: string,
    from: number | null,
    to: number | null,
    withMeta: boolean,
  ): Answer<StoredOp[]>;

  /** readOpsBetween for several documents of a collection. */
  protected abstract readOpsOfMany(
    collection: string,
    fromMap: Record<string, number | null>,
    toMap: Record<string, number | null> | null,
    withMeta: boolean,
  ): Answer<Record<string, StoredOp[]>>;

  /** The version below `before` at which the op of `src` numbered `seq` was committed, if any. */
  protected abstract committedVersionOf(
    collection: string,
    id: string,
    src: string,
    seq: number,
    before: number,
  ): Answer<number | undefined>;

  override commit(
    collection: string,
    id: string,
    op: StoredOp,
    snapshot: QuerySnapshot,
    _options: unknown,
    callback: Callback<boolean>,
  ): void {
    this.deliver(callback, () => this.commitOp(collection, id, op, snapshot));
  }

  override getSnapshot(
    collection: string,
    id: string,
    fields: Record<string, unknown> | null,
    options: { metadata?: boolean } | null,
    callback: Callback<QuerySnapshot>,
  ): void {
    const withMeta = wantsMetadata(fields, options);
    const forSubmit = fields?.$submit === true;
    this.deliver(callback, () => this.readSnapshot(collection, id, withMeta, forSubmit));
  }

  override getSnapshotBulk(
    collection: string,
    ids: string[],
    fields: Record<string, unknown> | null,
    options: { metadata?: boolean } | null,
    callback: Callback<Record<string, QuerySnapshot>>,
  ): void {
    const withMeta = wantsMetadata(fields, options);
    this.deliver(callback, () => this.readSnapshots(collection, ids, withMeta));
  }

  override getOps(
    collection: string,
    id: string,
    from: number | null,
    to: number | null,
    options: { metadata?: boolean } | null,
    callback: Callback<StoredOp[]>,
  ): void {
    this.deliver(callback, () => this.readOpsBetween(collection, id, from, to, Boolean(options?.metadata)));
  }

  override getOpsBulk(
    collection: string,
    fromMap: Record<string, number | null>,
    toMap: Record<string, number | null> | null,
    options: { metadata?: boolean } | null,
    callback: Callback<Record<string, StoredOp[]>>,
  ): void {
    this.deliver(callback, () => this.readOpsOfMany(collection, fromMap, toMap, Boolean(options?.metadata)));
  }

  /** The version at which an op with the same src/seq was committed, if any (resent ops). */
  override getCommittedOpVersion(
    collection: string,
    id: string,
    snapshot: { v: number },
    op: StoredOp,
    _options: unknown,
    callback: Callback<number | undefined>,
  ): void {
    const { src, seq } = op;
    this.deliver(callback, () => (src == null || seq == null ? undefined : this.committedVersionOf(collection, id, src, seq, snapshot.v)));
  }
}
