/**
 * PostgresDB: ShareDB's DB adapter on PostgreSQL, with SqliteDB's semantics.
 *
 * A commit is one statement, so one transaction: the document's snapshot row is locked
 * (`SELECT … FOR UPDATE`) and its version compared with the op's, and only then are the op
 * row and the new snapshot written. Of two instances committing to one document at once,
 * the second waits for the lock and then sees the new version: `succeeded=false`, and
 * ShareDB fetches, transforms and retries. Two creates of a new document have no row to lock; the primary key of the
 * ops table (collection, id, v) lets only one insert version 0, and the loser gets
 * `succeeded=false` too.
 *
 * Deleted documents keep their row (type NULL) so their version keeps counting; ops keep
 * src/seq beside the op for resent-op detection (getCommittedOpVersion). Queries are
 * translated to SQL (postgres-query.ts) and bounded (postgres-query-run.ts).
 *
 * Snapshots this instance read or wrote are kept in memory (SNAPSHOT_CACHE_MB,
 * postgres-snapshots.ts): a read, of one document or of many at once, asks PostgreSQL for the
 * version and gets the document only when the cached one is not at it.
 *
 * Every failure that is not a coded Tandem or ShareDB error reaches ShareDB as
 * TANDEM_STORAGE_ERROR (an unreachable PostgreSQL included); messages never hold the URL.
 */
import type { OplogRetention } from './oplog-retention.js';
import { DatabaseError } from 'pg';
import type ShareDB from 'sharedb';
import { TandemErrorCode, TandemError } from '../../client/protocol.js';
import { canPollDoc, type QuerySnapshot } from './mingo-query.js';
import { closedError, type PostgresStore } from './postgres-connection.js';
import { PostgresQueries } from './postgres-query-run.js';
import {
  checkedSnapshotBulkSql,
  checkedSnapshotSql,
  PostgresSnapshots,
  type CheckedSnapshotRow,
  type PostgresSnapshotCacheState,
} from './postgres-snapshots.js';
import type { QueryRunner } from './query-methods.js';
import { DEFAULT_SNAPSHOT_CACHE } from './snapshot-cache.js';
import { StoreDB, type Callback, type StoredOp } from './store-db.js';
import { asStorageFailure } from './storage-errors.js';

const UNIQUE_VIOLATION = '23505';

/**
 * @types/sharedb types error codes as numbers; ours (TANDEM_…) are strings. The one cast,
 * for callbacks typed with ShareDB's Error.
 */
export function asShareDbError(err: unknown): ShareDB.Error {
  return asStorageFailure(err, 'PostgreSQL') as unknown as ShareDB.Error;
}

/** Hands a result to a ShareDB callback outside the promise chain (a throwing callback stays an uncaught error). */
function settle<T>(work: Promise<T>, callback: Callback<T>): void {
  work.then(
    (result) => process.nextTick(callback, null, result),
    (err: unknown) => process.nextTick(callback, asShareDbError(err) as unknown as Error),
  );
}

function statements(t: PostgresStore['tables']) {
  return {
    // Op-log retention: $1 versions, $2 the mtime bound (ms) or null, $3 the batch size. The
    // removed ops' sources are recorded with their highest seq in the same statement.
    prunedSeq: `SELECT seq FROM ${t.prunedSources} WHERE collection = $1 AND id = $2 AND src = $3`,
    ensureCursor: `INSERT INTO ${t.webhookCursors} (target, collection, id, v) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
    advanceCursor: `UPDATE ${t.webhookCursors} SET v = GREATEST(v, $1) WHERE target = $2 AND collection = $3 AND id = $4`,
    cursorBacklog: `SELECT w.collection, w.id, w.v FROM ${t.webhookCursors} w
      JOIN ${t.snapshots} s ON s.collection = w.collection AND s.id = w.id WHERE w.target = $1 AND s.v > w.v`,
    compactOps: `WITH cut AS (
        SELECT m.collection, m.id, max(m.v) AS cut
        FROM ${t.milestones} m JOIN ${t.snapshots} s ON s.collection = m.collection AND s.id = m.id
        WHERE m.v <= s.v - $1::integer AND ($2::double precision IS NULL OR m.mtime < $2::double precision)
          AND m.v <= COALESCE((SELECT min(w.v) FROM ${t.webhookCursors} w WHERE w.collection = m.collection AND w.id = m.id), m.v)
        GROUP BY m.collection, m.id
      ), doomed AS (
        SELECT o.collection, o.id, o.v, o.src, o.seq FROM ${t.ops} o
        JOIN cut c ON o.collection = c.collection AND o.id = c.id AND o.v < c.cut
        LIMIT $3::integer
      ), recorded AS (
        INSERT INTO ${t.prunedSources} (collection, id, src, seq)
        SELECT collection, id, src, max(seq) FROM doomed WHERE src IS NOT NULL AND seq IS NOT NULL GROUP BY collection, id, src
        ON CONFLICT (collection, id, src) DO UPDATE SET seq = GREATEST(${t.prunedSources}.seq, EXCLUDED.seq)
      )
      DELETE FROM ${t.ops} o USING doomed d WHERE o.collection = d.collection AND o.id = d.id AND o.v = d.v`,
    // The whole commit in one statement (one round trip, its own transaction): the row lock
    // (FOR UPDATE waits for a concurrent commit, then reads the version it wrote), the
    // version check, and both rows, written only when the check passes. Explicit casts: in
    // INSERT … SELECT, PostgreSQL would take untyped parameters for text.
    commit: `WITH current AS (
        SELECT v FROM ${t.snapshots} WHERE collection = $1::text AND id = $2::text FOR UPDATE
      ), fresh AS (
        SELECT 1 WHERE COALESCE((SELECT v FROM current), 0) = $3::integer AND $8::integer = $3::integer + 1
      ), op AS (
        INSERT INTO ${t.ops} (collection, id, v, src, seq, op)
        SELECT $1::text, $2::text, $3::integer, $4::text, $5::bigint, $6::jsonb FROM fresh
      )
      INSERT INTO ${t.snapshots} (collection, id, type, v, data, metadata)
      SELECT $1::text, $2::text, $7::text, $8::integer, $9::jsonb, $10::jsonb FROM fresh
      ON CONFLICT (collection, id) DO UPDATE SET
        type = EXCLUDED.type, v = EXCLUDED.v, data = EXCLUDED.data, metadata = EXCLUDED.metadata`,
    snapshot: checkedSnapshotSql(t.snapshots),
    snapshotBulk: checkedSnapshotBulkSql(t.snapshots),
    // The version and the ops below it in one statement, so they come from one snapshot of the database.
    ops: `WITH current AS (
        SELECT COALESCE((SELECT v FROM ${t.snapshots} WHERE collection = $1 AND id = $2), 0) AS v
      )
      SELECT current.v AS current, o.v, o.op FROM current
      LEFT JOIN ${t.ops} o ON o.collection = $1 AND o.id = $2
        AND o.v >= $3 AND o.v < LEAST(current.v, COALESCE($4::integer, current.v))
      ORDER BY o.v`,
    opsBulk: `SELECT r.id, current.v AS current, o.v, o.op
      FROM unnest($2::text[], $3::integer[], $4::integer[]) AS r(id, from_v, to_v)
      CROSS JOIN LATERAL (
        SELECT COALESCE((SELECT s.v FROM ${t.snapshots} s WHERE s.collection = $1 AND s.id = r.id), 0) AS v
      ) AS current
      LEFT JOIN ${t.ops} o ON o.collection = $1 AND o.id = r.id
        AND o.v >= r.from_v AND o.v < LEAST(current.v, COALESCE(r.to_v, current.v))
      ORDER BY r.id, o.v`,
    committedOpVersion: `SELECT v FROM ${t.ops}
      WHERE collection = $1 AND id = $2 AND src = $3 AND seq = $4 AND v < $5
      ORDER BY v DESC LIMIT 1`,
  };
}

interface OpRow {
  current: number;
  v: number | null;
  op: StoredOp | null;
}

/**
 * Ops [from, min(to, current)) out of the rows of the `ops` statement; a hole in the range
 * is an error (TANDEM_MISSING_OPS), as in MemoryDB and SqliteDB.
 */
function opsFrom(collection: string, id: string, from: number, to: number | null, rows: OpRow[], withMeta: boolean): StoredOp[] {
  const current = rows[0]?.current ?? 0;
  const end = to === null ? current : Math.min(to, current);
  if (end <= from) return [];
  const ops = rows.filter((row) => row.v !== null);
  if (ops.length !== end - from) {
    throw new TandemError(TandemErrorCode.MISSING_OPS, `Missing ops: ${collection}/${id} [${from}, ${end})`);
  }
  return ops.map((row) => {
    const op = row.op!;
    op.v = row.v!;
    if (!withMeta) delete op.m;
    return op;
  });
}

export interface PostgresDbOptions {
  /** SNAPSHOT_CACHE_MB in bytes (postgres-snapshots.ts); default 128 MiB, 0 turns the cache off. */
  snapshotCacheBytes?: number;
}

/** ShareDB's callbacks and queries are store-db.ts's and query-methods.ts's, over the methods below. */
export class PostgresDB extends StoreDB {
  private closing: Promise<void> | null = null;
  private readonly sql: ReturnType<typeof statements>;
  private readonly snapshots: PostgresSnapshots;
  /** Queries translated to SQL and run by PostgreSQL, within the query limits (postgres-query-run.ts). */
  readonly queryRunner: QueryRunner;

  constructor(
    readonly store: PostgresStore,
    opts: PostgresDbOptions = {},
  ) {
    super();
    this.snapshots = new PostgresSnapshots(opts.snapshotCacheBytes ?? DEFAULT_SNAPSHOT_CACHE.cacheBytes);
    store.retain();
    this.sql = statements(store.tables);
    const queries = new PostgresQueries(store);
    this.queryRunner = {
      setLimits: (limits) => queries.setLimits(limits),
      query: (collection, query, options, callback) => this.deliver(callback, () => queries.query(collection, query, options)),
      queryPoll: (collection, query, options, callback) => this.deliver(callback, () => queries.queryPoll(collection, query, options)),
      pollDoc: (collection, id, query, callback) => this.deliver(callback, () => queries.pollDoc(collection, id, query)),
      canPollDoc,
    };
  }

  /** Runs `work` unless closed, and reports through `callback` (every read and write here answers a promise). */
  protected deliver<T>(callback: Callback<T>, work: () => Promise<T>): void {
    settle(this.closing ? Promise.reject(closedError('PostgreSQL database')) : work(), callback);
  }

  /** Releases the pool (ended when the milestone store is closed too); idempotent. */
  override close(callback?: (err?: Error) => void): void {
    this.closing ??= this.store.release();
    this.closing.then(
      () => callback && process.nextTick(callback),
      (err: unknown) => callback && process.nextTick(callback, err as Error),
    );
  }

  /** The snapshot cache's size (for /metrics and /readyz's storage state). */
  get snapshotCache(): PostgresSnapshotCacheState {
    return this.snapshots.state;
  }

  /** Readiness: resolves within 2 s, or rejects (closed, unreachable, no answer). */
  ping(): Promise<void> {
    return this.closing ? Promise.reject(closedError('PostgreSQL database')) : this.store.ping();
  }

  /**
   * Removes at most `limit` ops below their document's cut (see oplog-retention.ts): the
   * newest milestone at least `versions` behind the document and older than `age`. One
   * statement; instances compacting at once delete disjoint or already-deleted rows.
   */
  async compactOps(retention: OplogRetention, nowMs: number, limit: number): Promise<number> {
    if (this.closing) throw closedError('PostgreSQL database');
    const before = retention.ageMs === null ? null : nowMs - retention.ageMs;
    const result = await this.store.query(this.sql.compactOps, [retention.versions ?? 0, before, limit]);
    return result.rowCount ?? 0;
  }

  /** Webhook cursors (server/webhooks/cursors.ts); `ensure` is awaited before the op's ack. */
  readonly webhookCursors = {
    ensure: async (target: string, collection: string, id: string, v: number): Promise<void> => {
      await this.store.query(this.sql.ensureCursor, [target, collection, id, v]);
    },
    advance: async (target: string, collection: string, id: string, to: number): Promise<void> => {
      await this.store.query(this.sql.advanceCursor, [to, target, collection, id]);
    },
    backlog: async (target: string): Promise<Array<{ collection: string; id: string; v: number }>> =>
      (await this.store.query<{ collection: string; id: string; v: number }>(this.sql.cursorBacklog, [target])).rows,
  };

  /** The highest seq of `src` among this document's compacted ops, or null. */
  async prunedSeq(collection: string, id: string, src: string): Promise<number | null> {
    if (this.closing) throw closedError('PostgreSQL database');
    const result = await this.store.query<{ seq: string | number }>(this.sql.prunedSeq, [collection, id, src]);
    return result.rows.length === 0 ? null : Number(result.rows[0]!.seq);
  }

  /** Resolves false (not an error) when another writer got there first: ShareDB retries. */
  protected async commitOp(collection: string, id: string, op: StoredOp, snapshot: QuerySnapshot): Promise<boolean> {
    const deleted = snapshot.type == null || snapshot.data === undefined;
    const dataJson = deleted ? null : JSON.stringify(snapshot.data);
    let committed = false;
    try {
      const result = await this.store.query(this.sql.commit, [
        collection,
        id,
        op.v,
        op.src ?? null,
        op.seq ?? null,
        JSON.stringify(op),
        snapshot.type ?? null,
        snapshot.v,
        dataJson,
        snapshot.m == null ? null : JSON.stringify(snapshot.m),
      ]);
      committed = result.rowCount === 1; // 0: the stored version was not op.v
      return committed;
    } catch (err) {
      // A concurrent create of the same document inserted version 0 first.
      if (err instanceof DatabaseError && err.code === UNIQUE_VIOLATION) return false;
      throw err;
    } finally {
      if (committed) this.snapshots.committed(collection, id, snapshot, dataJson);
      else this.snapshots.forget(collection, id);
    }
  }

  protected async readSnapshot(collection: string, id: string, withMeta: boolean): Promise<QuerySnapshot> {
    const sent = this.snapshots.lookup(collection, id);
    const result = await this.store.query<CheckedSnapshotRow>(this.sql.snapshot, [collection, id, sent?.v ?? -1]);
    return this.snapshots.fromRow(collection, id, result.rows[0], sent, withMeta);
  }

  protected async readSnapshots(collection: string, ids: string[], withMeta: boolean): Promise<Record<string, QuerySnapshot>> {
    const sent = ids.map((id) => this.snapshots.lookup(collection, id));
    const result = await this.store.query<CheckedSnapshotRow & { id: string }>(this.sql.snapshotBulk, [
      collection,
      ids,
      sent.map((snapshot) => snapshot?.v ?? -1),
    ]);
    const byId = new Map(result.rows.map((row) => [row.id, row]));
    const snapshots: Record<string, QuerySnapshot> = Object.create(null);
    ids.forEach((id, i) => {
      snapshots[id] = this.snapshots.fromRow(collection, id, byId.get(id), sent[i], withMeta);
    });
    return snapshots;
  }

  protected async readOpsBetween(
    collection: string,
    id: string,
    from: number | null,
    to: number | null,
    withMeta: boolean,
  ): Promise<StoredOp[]> {
    const start = from ?? 0;
    const result = await this.store.query<OpRow>(this.sql.ops, [collection, id, start, to]);
    return opsFrom(collection, id, start, to, result.rows, withMeta);
  }

  protected async readOpsOfMany(
    collection: string,
    fromMap: Record<string, number | null>,
    toMap: Record<string, number | null> | null,
    withMeta: boolean,
  ): Promise<Record<string, StoredOp[]>> {
    const ids = Object.keys(fromMap);
    const froms = ids.map((id) => fromMap[id] ?? 0);
    const tos = ids.map((id) => toMap?.[id] ?? null);
    const result = await this.store.query<OpRow & { id: string }>(this.sql.opsBulk, [collection, ids, froms, tos]);
    const rowsById = new Map<string, OpRow[]>();
    for (const row of result.rows) {
      const rows = rowsById.get(row.id);
      if (rows) rows.push(row);
      else rowsById.set(row.id, [row]);
    }
    const ops: Record<string, StoredOp[]> = Object.create(null);
    ids.forEach((id, i) => {
      ops[id] = opsFrom(collection, id, froms[i]!, tos[i] ?? null, rowsById.get(id) ?? [], withMeta);
    });
    return ops;
  }

  protected async committedVersionOf(
    collection: string,
    id: string,
    src: string,
    seq: number,
    before: number,
  ): Promise<number | undefined> {
    const result = await this.store.query<{ v: number }>(this.sql.committedOpVersion, [collection, id, src, seq, before]);
    return result.rows[0]?.v;
  }
}

export function createPostgresDb(store: PostgresStore): PostgresDB {
  return new PostgresDB(store);
}
