/**
 * SqliteDB: ShareDB's DB adapter on an embedded SQLite file (libsql, better-sqlite3 API).
 *
 * Several server processes may share one file: WAL journal (readers never block the
 * writer), a busy timeout (a writer waits for another process's write instead of failing),
 * and every commit re-reads the stored version under the write lock (`BEGIN IMMEDIATE`), so
 * exactly one of two racing commits to a document wins; the other gets `succeeded=false`
 * and ShareDB re-fetches, transforms and retries. With a Turn (`SqliteOptions.turn`) the
 * commits of one event-loop turn share that transaction (group commit, see SqliteWriter in
 * sqlite-connection.ts) while no other writer shares the file (SqlitePeers).
 *
 * libsql is synchronous: each call blocks the event loop for its duration (tens of µs for
 * a commit with synchronous=NORMAL, up to busyTimeoutMs while another process holds the
 * write lock). ShareDB expects asynchronous callbacks, so every result is delivered on
 * process.nextTick.
 */
import type { OplogRetention } from './oplog-retention.js';
import { RETENTION_SCHEMA, SqliteRetention } from './sqlite-retention.js';
import type { WebhookCursors } from '../webhooks/cursors.js';
import { TandemErrorCode } from '../../client/protocol.js';
import { QueryExecutor } from '../limits/query-executor.js';
import { QueryScanner, type ScannerOptions } from '../limits/query-scan.js';
import { sqliteScanSource } from './sqlite-scan-source.js';
import { StoreDB, type Callback, type StoredOp } from './store-db.js';
import type { QuerySnapshot } from './mingo-query.js';
import {
  inWriteTransaction,
  openSqliteFile,
  SqliteWriter,
  storageError,
  type Connection,
  type SqliteOptions as SqliteConnectionOptions,
} from './sqlite-connection.js';
import { SqlitePeers } from './sqlite-peers.js';
import { SqliteCheckpointer, type CheckpointMode, type CheckpointState, type CheckpointTriggers } from './sqlite-checkpointer.js';
import { HEADED_COLUMNS, HEADED_FROM, INSERT_OP_AT_HEAD_SQL, migrateDocuments } from './sqlite-heads.js';
import {
  DEFAULT_SNAPSHOT_CACHE,
  SqliteDocuments,
  toSnapshot,
  type SnapshotCacheOptions,
  type SnapshotCacheState,
  type SnapshotRow,
} from './sqlite-documents.js';

export type { SqliteSynchronous } from './sqlite-connection.js';

export interface SqliteOptions extends SqliteConnectionOptions {
  /** The snapshot cache and lazy snapshot writes (sqlite-documents.ts); default DEFAULT_SNAPSHOT_CACHE. */
  snapshotCache?: SnapshotCacheOptions;
  /**
   * WAL checkpoints in a thread of their own (`background`, the default; see
   * sqlite-checkpointer.ts) or inside the COMMIT that fills the WAL, on the event loop
   * (`inline`, SQLite's default). SQLITE_CHECKPOINTS.
   */
  checkpoints?: CheckpointMode;
  /** Background checkpoints: when the thread checkpoints; default DEFAULT_CHECKPOINT_TRIGGERS. */
  checkpointTriggers?: CheckpointTriggers;
  /** How queries are sliced (query-scan.ts); the defaults serve a server. */
  queryScanner?: ScannerOptions;
}

export type { StoredOp } from './store-db.js';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS snapshots (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT,          -- NULL once deleted: the row stays so the version keeps counting
    v INTEGER NOT NULL,
    data TEXT,          -- JSON; NULL when deleted
    metadata TEXT,      -- JSON of snapshot.m
    PRIMARY KEY (collection, id)
  );
  CREATE TABLE IF NOT EXISTS ops (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    v INTEGER NOT NULL,
    src TEXT,           -- copied out of op for getCommittedOpVersion (resent-op detection)
    seq INTEGER,
    op TEXT NOT NULL,   -- the whole op as JSON, metadata included
    PRIMARY KEY (collection, id, v)
  );
  ${RETENTION_SCHEMA}
`;

function isPrimaryKeyConflict(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

function prepareStatements(conn: Connection) {
  return {
    // Rows come with their document's head (sqlite-documents.ts): a row may lag it.
    snapshotBulk: conn.prepare(`SELECT ${HEADED_COLUMNS} FROM ${HEADED_FROM}
      WHERE s.collection = ? AND s.id IN (SELECT value FROM json_each(?))`),
    insertOpAtHead: conn.prepare(INSERT_OP_AT_HEAD_SQL),
    committedOpVersion: conn.prepare(`SELECT v FROM ops
      WHERE collection = ? AND id = ? AND src = ? AND seq = ? AND v < ?
      ORDER BY v DESC LIMIT 1`),
    // Reads the file (not just the engine), so a vanished or unreadable file fails readiness.
    ping: conn.prepare('SELECT 1 FROM snapshots LIMIT 1'),
  };
}

// Control-flow marker for "someone else committed first"; never escapes commitOp.
const STALE = Symbol('stale commit');

/** ShareDB's callbacks and queries are store-db.ts's and query-methods.ts's, over the methods below. */
export class SqliteDB extends StoreDB {
  readonly path: string;
  /** Set by close(); every later call fails with TANDEM_DB_CLOSED instead of touching the handle. */
  private closed = false;
  private readonly conn: Connection;
  private readonly stmts: ReturnType<typeof prepareStatements>;
  private readonly writer: SqliteWriter;
  /** Heads, snapshot rows and the snapshot cache (sqlite-documents.ts). */
  private readonly documents: SqliteDocuments;
  /** Other processes on the file (group commit only). */
  private peers: SqlitePeers | null = null;
  /** Background WAL checkpoints (sqlite-checkpointer.ts); null: SQLite's own, inline. */
  private readonly checkpointer: SqliteCheckpointer | null;
  /**
   * Queries, evaluated in process: validated before anything is read, then over the
   * documents they name by `_id` or a scan of the collection, in slices (query-executor.ts).
   */
  readonly queryRunner: QueryExecutor;

  constructor(opts: SqliteOptions) {
    super();
    this.path = opts.path;
    this.conn = openSqliteFile(opts);
    // ':memory:' has no WAL to checkpoint.
    const background = opts.path !== ':memory:' && (opts.checkpoints ?? 'background') === 'background';
    this.checkpointer = background ? new SqliteCheckpointer(this.conn, opts.path, opts.checkpointTriggers) : null;
    try {
      // Inside a write transaction: two processes starting at once must not race on DDL.
      inWriteTransaction(this.conn, () => {
        this.conn.exec(SCHEMA);
        migrateDocuments(this.conn);
      });
      this.stmts = prepareStatements(this.conn);
      const turn = opts.turn ?? null;
      this.writer = new SqliteWriter(this.conn, opts.path, turn, () => this.peers?.alone ?? true);
      this.documents = new SqliteDocuments(this.conn, this.writer, opts.snapshotCache ?? DEFAULT_SNAPSHOT_CACHE);
      this.queryRunner = new QueryExecutor(
        sqliteScanSource({
          conn: this.conn,
          documents: this.documents,
          snapshotBulk: this.stmts.snapshotBulk,
          assertOpen: () => this.assertOpen(),
          readSnapshot: (collection, id) => this.readSnapshot(collection, id, true),
        }),
        new QueryScanner(opts.queryScanner),
      );
      this.retention = new SqliteRetention(this.conn, this.writer, () => this.assertOpen());
      if (turn) {
        // Heartbeats never open a turn-long transaction: another connection of this process
        // (the milestone store, opened right after) would wait on that lock in this thread.
        const beatWrite = (fn: () => void) => (this.conn.inTransaction ? fn() : inWriteTransaction(this.conn, fn));
        const peers = inWriteTransaction(
          this.conn,
          () => new SqlitePeers(this.writer.groupWritersOfFile, this.conn, beatWrite, opts.heartbeatMs),
        );
        peers.start();
        this.peers = peers;
      }
    } catch (err) {
      this.conn.close();
      throw err;
    }
  }

  /** Runs `work` now (libsql is synchronous: every read and write here answers a value) and reports on the next tick. */
  protected deliver<T>(callback: Callback<T>, work: () => T): void {
    let result: T;
    try {
      this.assertOpen();
      result = work();
    } catch (err) {
      process.nextTick(callback, err as Error);
      return;
    }
    process.nextTick(callback, null, result);
  }

  override close(callback?: (err?: Error) => void): void {
    let error: Error | undefined;
    if (!this.closed) {
      this.closed = true;
      try {
        this.peers?.stop();
      } catch (err) {
        error = err as Error;
      }
      try {
        this.documents.close(); // the next start reads snapshot rows instead of replaying ops
      } catch (err) {
        error = err as Error;
      }
      try {
        this.writer.commit(); // a turn's writes still open become durable first
      } catch (err) {
        error ??= err as Error;
      }
      this.writer.unregister();
      this.conn.close();
    }
    const stopped = this.checkpointer?.stop() ?? Promise.resolve();
    if (callback) void stopped.then(() => callback(error));
  }

  /** See VersionHintedStore in store-db.ts. */
  expectVersion(collection: string, id: string, opVersion: unknown): void {
    if (!this.closed) this.documents.expectVersion(collection, id, opVersion);
  }

  /** Op-log retention and webhook cursors on this file and this connection (sqlite-retention.ts). */
  private readonly retention: SqliteRetention;

  /** See CompactableStore in oplog-retention.ts. */
  compactOps(retention: OplogRetention, nowMs: number, limit: number): Promise<number> {
    // Compaction stops at each snapshot row: bring this process's rows up to date first.
    this.documents.flushAll();
    this.documents.dropTails();
    return this.retention.compactOps(retention, nowMs, limit).finally(() => this.documents.dropTails());
  }

  /** See CompactableStore in oplog-retention.ts. */
  prunedSeq(collection: string, id: string, src: string): Promise<number | null> {
    return this.retention.prunedSeq(collection, id, src);
  }

  /** See WebhookCursors in server/webhooks/cursors.ts. */
  get webhookCursors(): WebhookCursors {
    return this.retention.webhookCursors;
  }

  /** The snapshot cache as it stands (see StorageState in index.ts). */
  get snapshotCache(): SnapshotCacheState {
    return this.documents.state;
  }

  /** Where WAL checkpoints run now (see StorageState in index.ts). */
  get walCheckpoints(): CheckpointState {
    return this.checkpointer?.state ?? { mode: 'inline' };
  }

  /** Group commit as configured and as it runs now (see StorageState in index.ts). */
  get groupCommit(): 'on' | 'paused' | 'off' {
    if (!this.peers) return 'off';
    return this.peers.alone ? 'on' : 'paused';
  }

  /** Readiness check: throws if closed or the file is unusable. */
  ping(): void {
    this.assertOpen();
    if (this.writer.failed)
      throw storageError(TandemErrorCode.STORAGE_ERROR, `SQLite could not commit a turn: ${this.writer.failed.message}`);
    this.stmts.ping.get();
  }

  /**
   * Returns false (not an error) when another writer got there first: ShareDB retries.
   * Public: tests and tools commit without a callback.
   */
  commitOp(collection: string, id: string, op: StoredOp, snapshot: QuerySnapshot): boolean {
    if (snapshot.v !== op.v + 1) return false;
    const json = JSON.stringify(op);
    const deferred = this.documents.defersSnapshot(collection, id, op, snapshot);
    const commit = (): boolean => {
      let inserted: number;
      try {
        inserted = Number(
          this.stmts.insertOpAtHead.run(collection, id, op.v, op.src ?? null, op.seq ?? null, json, collection, id, op.v).changes,
        );
      } catch (err) {
        if (isPrimaryKeyConflict(err)) throw STALE; // undoes this write only, then false below
        throw err;
      }
      // Not at the head: another writer got there first.
      if (inserted === 0) {
        this.documents.stale(collection, id);
        return false;
      }
      this.documents.committed(collection, id, snapshot, json, deferred);
      return true;
    };
    let committed: boolean;
    try {
      // One statement when the snapshot waits: atomic by itself, no savepoint needed.
      committed = deferred ? this.writer.writeStatement(commit) : this.writer.write(commit);
    } catch (err) {
      if (err === STALE) {
        this.documents.stale(collection, id);
        return false;
      }
      throw err;
    }
    if (committed) {
      // Outside the commit's write: an eviction writes snapshots of other documents.
      this.documents.evictOverBudget();
      this.checkpointer?.committed();
    }
    return committed;
  }

  protected readSnapshot(collection: string, id: string, withMeta: boolean, forSubmit = false): QuerySnapshot {
    const snapshot = this.documents.current(collection, id, withMeta, { forSubmit });
    this.documents.evictOverBudget();
    return snapshot;
  }

  protected readSnapshots(collection: string, ids: string[], withMeta: boolean): Record<string, QuerySnapshot> {
    const rows = this.stmts.snapshotBulk.all(collection, JSON.stringify(ids)) as Array<SnapshotRow & { id: string }>;
    const byId = new Map(rows.map((row) => [row.id, row]));
    const results: Record<string, QuerySnapshot> = Object.create(null);
    for (const id of ids) {
      const row = byId.get(id);
      // No row: never created (a create writes its row at once).
      results[id] = row ? this.documents.current(collection, id, withMeta, { row }) : toSnapshot(id, undefined, withMeta);
    }
    this.documents.evictOverBudget();
    return results;
  }

  protected readOpsBetween(collection: string, id: string, from: number | null, to: number | null, withMeta: boolean): StoredOp[] {
    return this.rowsBetween(collection, id, from ?? 0, to).map((r) => {
      const op = JSON.parse(r.op) as StoredOp;
      op.v = r.v;
      if (!withMeta) delete op.m;
      return op;
    });
  }

  private rowsBetween(collection: string, id: string, start: number, to: number | null): Array<{ v: number; op: string }> {
    // A bounded range (the common case: ShareDB reading the ops a submit is transformed past)
    // comes from the cached document's tail, or else needs no version read when the op log
    // holds it whole: op rows and the head move together, so rows [start, to) all exist only
    // if the head is at least `to`.
    if (to != null && to > start) {
      const rows = this.documents.tailOps(collection, id, start, to) ?? this.documents.opRowsIfWhole(collection, id, start, to);
      if (rows) return rows;
    }
    // Version first: ops committed after this read are >= it, so they fall outside the range.
    const current = this.documents.head(collection, id);
    const end = to == null ? current : Math.min(to, current);
    if (end <= start) return [];
    return this.documents.opRows(collection, id, start, end);
  }

  protected readOpsOfMany(
    collection: string,
    fromMap: Record<string, number | null>,
    toMap: Record<string, number | null> | null,
    withMeta: boolean,
  ): Record<string, StoredOp[]> {
    const results: Record<string, StoredOp[]> = Object.create(null);
    for (const id of Object.keys(fromMap))
      results[id] = this.readOpsBetween(collection, id, fromMap[id] ?? null, toMap?.[id] ?? null, withMeta);
    return results;
  }

  protected committedVersionOf(collection: string, id: string, src: string, seq: number, before: number): number | undefined {
    return (this.stmts.committedOpVersion.get(collection, id, src, seq, before) as { v: number } | undefined)?.v;
  }

  private assertOpen(): void {
    if (this.closed) throw storageError(TandemErrorCode.DB_CLOSED, 'SQLite database is closed');
  }
}

export function createSqliteDb(opts: SqliteOptions): SqliteDB {
  return new SqliteDB(opts);
}
