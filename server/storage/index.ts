/**
 * openStorage(DB_URL): the one place a database URL becomes ShareDB's db + milestoneDb.
 *
 *   sqlite:<path>                  embedded SQLite file, e.g. sqlite:./data/tandem.db
 *                                  (sqlite:///abs/path.db and sqlite::memory: work too)
 *   memory:                        in-process, lost on exit
 *   mongodb://… | mongodb+srv://…  MongoDB through sharedb-mongo
 *   postgres://… | postgresql://…  PostgreSQL (postgres*.ts); `?schema=name` for a schema of
 *                                  its own, created with the tables on first use
 */
import type { CompactableStore } from './oplog-retention.js';
import { MemoryWebhookCursors, type WebhookCursors } from '../webhooks/cursors.js';
import type ShareDB from 'sharedb';
import type { Turn } from '../turn.js';
import { createMemoryDb, createMemoryMilestoneDb } from './memory.js';
import { createMongoStorage } from './mongo.js';
import { redactUrl } from './postgres-connection.js';
import { createPostgresStorage } from './postgres-storage.js';
import { createSqliteDb, type SqliteSynchronous } from './sqlite.js';
import { createSqliteMilestoneDb, DEFAULT_MILESTONE_INTERVAL } from './sqlite-milestone.js';
import type { SnapshotCacheState } from './sqlite-documents.js';
import type { PostgresSnapshotCacheState } from './postgres-snapshots.js';
import type { CheckpointMode, CheckpointState } from './sqlite-checkpointer.js';
import type { SnapshotCacheOptions } from './snapshot-cache.js';

export type StorageKind = 'sqlite' | 'memory' | 'mongo' | 'postgres';

export interface StorageOptions {
  /** Milestone snapshot every N versions (all kinds). Default 1000. */
  milestoneInterval?: number;
  /** SQLite only; see SqliteOptions for the defaults and why. */
  sqliteSynchronous?: SqliteSynchronous;
  /** SQLite only; default 5000. */
  sqliteBusyTimeoutMs?: number;
  /** SQLite only: where WAL checkpoints run (SQLITE_CHECKPOINTS); default background. */
  sqliteCheckpoints?: CheckpointMode;
  /** SNAPSHOT_CACHE_MB (SQLite and PostgreSQL), SNAPSHOT_FLUSH_OPS, SNAPSHOT_FLUSH_MS (SQLite); default DEFAULT_SNAPSHOT_CACHE. */
  snapshotCache?: SnapshotCacheOptions;
  /** PostgreSQL only: most pooled connections (PG_POOL_MAX). Default 10. */
  pgPoolMax?: number;
  /** PostgreSQL only: PG_READ_TIMEOUT_MS. Default 10000. */
  pgReadTimeoutMs?: number;
  /**
   * SQLite only: group commit, one transaction per event-loop turn (see SqliteOptions.turn).
   * Pass the Turn every transport and pub/sub of the server holds its output in.
   */
  turn?: Turn;
}

/** What /metrics reports about the store. */
export interface StorageState {
  kind: StorageKind;
  /**
   * SQLite group commit: `on` (one transaction per turn), `paused` (another writer shares the
   * file: one per commit), `off` (SQLITE_GROUP_COMMIT=false). Absent for other stores.
   */
  groupCommit?: 'on' | 'paused' | 'off';
  /** SQLite: where WAL checkpoints run now (`inline` with a failure: the thread failed). */
  walCheckpoints?: CheckpointState;
  /** PostgreSQL: pooled connections open, idle, and requests waiting for one (PG_POOL_MAX). */
  pool?: { total: number; idle: number; waiting: number };
  /** The snapshot cache: documents and bytes; SQLite also unwritten documents and failed background writes. */
  snapshotCache?: SnapshotCacheState | PostgresSnapshotCacheState;
}

export interface Storage {
  kind: StorageKind;
  state(): StorageState;
  db: ShareDB.DB;
  milestoneDb: ShareDB.MilestoneDB;
  /** Readiness: resolves when a trivial query succeeds. */
  ping(): Promise<void>;
  /** Removes ops below the retention's cut (OPLOG_RETENTION); absent where the store cannot. */
  compact?: CompactableStore;
  /** Where webhook targets stand (WEBHOOK_URLS); absent where the store cannot keep them (MongoDB). */
  webhookCursors?: WebhookCursors;
  /** Idempotent; safe after ShareDB's Backend.close() already closed db and milestoneDb. */
  close(): Promise<void>;
}

export const ACCEPTED_DB_URLS =
  'sqlite:<path> (e.g. sqlite:./data/tandem.db), memory:, mongodb://…, mongodb+srv://…, postgres://… or postgresql://…';

function closeWith(close: (cb: (err?: Error) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => close((err) => (err ? reject(err) : resolve())));
}

/** `sqlite:./x.db` → `./x.db`; `sqlite:///abs/x.db` → `/abs/x.db`; `sqlite://./x.db` → `./x.db`. */
export function sqlitePathFromUrl(dbUrl: string): string {
  let rest = dbUrl.slice('sqlite:'.length);
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest === '') throw new Error(`DB_URL "${dbUrl}" has no file path; expected ${ACCEPTED_DB_URLS}`);
  return rest;
}

export function openStorage(dbUrl: string, opts: StorageOptions = {}): Storage {
  const interval = opts.milestoneInterval ?? DEFAULT_MILESTONE_INTERVAL;
  const lower = dbUrl.toLowerCase();

  if (lower.startsWith('sqlite:')) {
    const sqliteOpts = {
      path: sqlitePathFromUrl(dbUrl),
      synchronous: opts.sqliteSynchronous,
      busyTimeoutMs: opts.sqliteBusyTimeoutMs,
      turn: opts.turn,
    };
    const db = createSqliteDb({ ...sqliteOpts, snapshotCache: opts.snapshotCache, checkpoints: opts.sqliteCheckpoints });
    let milestoneDb;
    try {
      milestoneDb = createSqliteMilestoneDb({ ...sqliteOpts, interval });
    } catch (err) {
      db.close();
      throw err;
    }
    return {
      kind: 'sqlite',
      db,
      milestoneDb,
      state: () => ({ kind: 'sqlite', groupCommit: db.groupCommit, walCheckpoints: db.walCheckpoints, snapshotCache: db.snapshotCache }),
      ping: async () => db.ping(),
      compact: db,
      webhookCursors: db.webhookCursors,
      close: async () => {
        await closeWith((cb) => db.close(cb));
        await closeWith((cb) => milestoneDb.close(cb));
      },
    };
  }

  if (lower === 'memory:' || lower === 'memory://') {
    const db = createMemoryDb();
    const milestoneDb = createMemoryMilestoneDb(interval);
    return {
      kind: 'memory',
      db,
      milestoneDb,
      state: () => ({ kind: 'memory' }),
      webhookCursors: new MemoryWebhookCursors(),
      ping: async () => {
        // MemoryDB sets `closed` in close() but keeps serving; readiness should not.
        if (db.closed) throw new Error('memory database is closed');
      },
      close: async () => {
        await closeWith((cb) => db.close(cb));
        await closeWith((cb) => milestoneDb.close(cb));
      },
    };
  }

  if (lower.startsWith('mongodb://') || lower.startsWith('mongodb+srv://')) {
    const mongo = createMongoStorage({ url: dbUrl, milestoneInterval: interval });
    return {
      kind: 'mongo',
      db: mongo.db,
      milestoneDb: mongo.milestoneDb,
      ping: mongo.ping,
      close: mongo.close,
      state: () => ({ kind: 'mongo' }),
    };
  }

  if (lower.startsWith('postgres://') || lower.startsWith('postgresql://')) {
    let pg;
    try {
      pg = createPostgresStorage({
        url: dbUrl,
        poolMax: opts.pgPoolMax,
        readTimeoutMs: opts.pgReadTimeoutMs,
        milestoneInterval: interval,
        snapshotCacheBytes: opts.snapshotCache?.cacheBytes,
      });
    } catch (err) {
      // pg and URL errors do not hold the password, but say which URL without it.
      throw new Error(`DB_URL ${redactUrl(dbUrl)}: ${(err as Error).message}`);
    }
    return {
      kind: 'postgres',
      db: pg.db,
      milestoneDb: pg.milestoneDb,
      ping: pg.ping,
      close: pg.close,
      compact: pg.db,
      webhookCursors: pg.db.webhookCursors,
      state: () => ({ kind: 'postgres', pool: pg.store.poolState, snapshotCache: pg.db.snapshotCache }),
    };
  }

  // Only the scheme is echoed: the rest of an unknown URL may hold credentials.
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(dbUrl)?.[0] ?? '(no scheme)';
  throw new Error(`Unsupported DB_URL scheme ${scheme}: expected ${ACCEPTED_DB_URLS}`);
}
