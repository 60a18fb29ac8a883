/**
 * SqliteMilestoneDB: ShareDB milestone snapshots in the same SQLite file as SqliteDB.
 *
 * Milestones let Backend.fetchSnapshot(version) start from the nearest saved snapshot at
 * or below the version and replay only the ops after it. ShareDB's SubmitRequest saves one
 * after a commit when `snapshot.v % interval === 0` (unless commit middleware sets
 * `request.saveMilestoneSnapshot`).
 *
 * It opens its own connection (same pragmas as SqliteDB), so either can be closed first
 * and ShareDB's Backend.close() closing both stays simple. With group commit (a Turn), a
 * save waits for the end of the turn, after SqliteDB's COMMIT released the write lock: the
 * milestone's own write would otherwise wait for that lock inside the same thread.
 */
import ShareDB from 'sharedb';
import type { Turn } from '../turn.js';
import {
  asShareDbError,
  inWriteTransaction,
  openSqliteFile,
  storageError,
  type Connection,
  type SqliteOptions,
} from './sqlite-connection.js';

export interface SqliteMilestoneOptions extends SqliteOptions {
  /**
   * Save a milestone every `interval` versions. Default 1000, as sharedb-milestone-mongo:
   * a historic fetch then replays at most 999 ops, for one extra snapshot row per 1000 ops.
   */
  interval?: number;
}

export const DEFAULT_MILESTONE_INTERVAL = 1000;

/** ShareDB's Snapshot as stored and returned here. */
export interface MilestoneSnapshot {
  id: string;
  v: number;
  type: string | null;
  data?: unknown;
  m: Record<string, unknown> | null;
}

// @types/sharedb's BasicCallback shape: no error is `undefined`, not null.
type Callback<T> = (err?: Error, result?: T) => void;

interface MilestoneRow {
  id: string;
  v: number;
  type: string | null;
  data: string | null;
  metadata: string | null;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS milestones (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    v INTEGER NOT NULL,
    mtime INTEGER,      -- snapshot.m.mtime, for the by-timestamp lookups
    type TEXT,
    data TEXT,          -- JSON
    metadata TEXT,      -- JSON of snapshot.m
    PRIMARY KEY (collection, id, v)
  );
  CREATE INDEX IF NOT EXISTS milestones_mtime ON milestones (collection, id, mtime);
`;
const COLUMNS = 'id, v, type, data, metadata';

function invalid(message: string): Error {
  return storageError('ERR_MILESTONE_ARGUMENT_INVALID', message);
}

// Same rule as ShareDB's util.isValidVersion / isValidTimestamp: null or an integer >= 0.
function isValidVersionOrNull(value: unknown): value is number | null {
  return value === null || (Number.isInteger(value) && (value as number) >= 0);
}

function toSnapshot(row: MilestoneRow | undefined): MilestoneSnapshot | undefined {
  if (!row) return undefined;
  return {
    id: row.id,
    v: row.v,
    type: row.type,
    data: row.data === null ? undefined : JSON.parse(row.data),
    m: row.metadata === null ? null : (JSON.parse(row.metadata) as Record<string, unknown>),
  };
}

type Statement = ReturnType<typeof prepareStatements>['latest'];

function prepareStatements(conn: Connection) {
  const select = `SELECT ${COLUMNS} FROM milestones WHERE collection = ? AND id = ?`;
  return {
    save: conn.prepare(`INSERT OR REPLACE INTO milestones
      (collection, id, v, mtime, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)`),
    atOrBeforeVersion: conn.prepare(`${select} AND v <= ? ORDER BY v DESC LIMIT 1`),
    latest: conn.prepare(`${select} ORDER BY v DESC LIMIT 1`),
    first: conn.prepare(`${select} ORDER BY v ASC LIMIT 1`),
    atOrBeforeTime: conn.prepare(`${select} AND mtime <= ? ORDER BY mtime DESC, v DESC LIMIT 1`),
    atOrAfterTime: conn.prepare(`${select} AND mtime >= ? ORDER BY mtime ASC, v ASC LIMIT 1`),
  };
}

export class SqliteMilestoneDB extends ShareDB.MilestoneDB {
  /** Read by ShareDB's SubmitRequest (`snapshot.v % interval === 0`). */
  readonly interval: number;
  readonly path: string;
  /** Set by close(); later calls fail instead of touching the closed handle. */
  private closed = false;
  private readonly conn: Connection;
  private readonly stmts: ReturnType<typeof prepareStatements>;
  private readonly turn: Turn | null;

  constructor(opts: SqliteMilestoneOptions) {
    super();
    this.turn = opts.turn ?? null;
    const interval = opts.interval ?? DEFAULT_MILESTONE_INTERVAL;
    if (!Number.isInteger(interval) || interval < 1) {
      throw new Error(`milestone interval must be a positive integer, got ${interval}`);
    }
    this.interval = interval;
    this.path = opts.path;
    this.conn = openSqliteFile(opts);
    try {
      inWriteTransaction(this.conn, () => this.conn.exec(SCHEMA));
      this.stmts = prepareStatements(this.conn);
    } catch (err) {
      this.conn.close();
      throw err;
    }
  }

  /**
   * Runs `work` now (libsql is synchronous) and reports on the next tick. Without a
   * callback an error becomes an 'error' event, as in ShareDB's MilestoneDB base class.
   */
  private run<T>(callback: Callback<T> | undefined, work: () => T): void {
    let result: T;
    try {
      if (this.closed) throw storageError('TANDEM_DB_CLOSED', 'SQLite milestone database is closed');
      result = work();
    } catch (err) {
      if (callback) process.nextTick(callback, err as Error);
      else process.nextTick(() => this.emit('error', asShareDbError(err)));
      return;
    }
    if (callback) process.nextTick(callback, undefined, result);
  }

  private checkDoc(collection: unknown, id: unknown): void {
    if (!collection) throw invalid('Missing collection');
    if (!id) throw invalid('Missing ID');
  }

  override close(callback?: (err?: Error) => void): void {
    if (!this.closed) {
      this.closed = true;
      this.conn.close();
    }
    if (callback) process.nextTick(callback);
  }

  override saveMilestoneSnapshot(
    collection: string, snapshot: MilestoneSnapshot, callback?: (err?: Error) => void,
  ): void {
    // Without a callback (how SubmitRequest calls it) the outcome is an event, as in ShareDB.
    const done: Callback<void> = (err) => {
      if (callback) callback(err);
      else if (!err) this.emit('save', collection, snapshot as ShareDB.Snapshot);
      else this.emit('error', asShareDbError(err));
    };
    const save = () => this.run(done, () => {
      if (!collection) throw invalid('Missing collection');
      if (!snapshot) throw invalid('Missing snapshot');
      const mtime = snapshot.m?.mtime;
      this.stmts.save.run(
        collection, snapshot.id, snapshot.v, typeof mtime === 'number' ? mtime : null,
        snapshot.type ?? null,
        snapshot.data === undefined ? null : JSON.stringify(snapshot.data),
        snapshot.m == null ? null : JSON.stringify(snapshot.m),
      );
    });
    // Registered after the COMMIT of the commit it follows, so it runs after it.
    if (this.turn) this.turn.beforeSend(save);
    else save();
  }

  /** The newest milestone with v <= version (any version when null); undefined if none. */
  override getMilestoneSnapshot(
    collection: string, id: string, version: number | null,
    callback?: Callback<MilestoneSnapshot | undefined>,
  ): void {
    this.lookup(callback, collection, id, version, 'version', this.stmts.latest, this.stmts.atOrBeforeVersion);
  }

  /** The newest milestone with mtime <= timestamp; for null, the first milestone. */
  override getMilestoneSnapshotAtOrBeforeTime(
    collection: string, id: string, timestamp: number | null,
    callback?: Callback<MilestoneSnapshot | undefined>,
  ): void {
    this.lookup(callback, collection, id, timestamp, 'timestamp', this.stmts.first, this.stmts.atOrBeforeTime);
  }

  /** The oldest milestone with mtime >= timestamp; for null, the latest milestone. */
  override getMilestoneSnapshotAtOrAfterTime(
    collection: string, id: string, timestamp: number | null,
    callback?: Callback<MilestoneSnapshot | undefined>,
  ): void {
    this.lookup(callback, collection, id, timestamp, 'timestamp', this.stmts.latest, this.stmts.atOrAfterTime);
  }

  /** One milestone row: `whenNull` when `bound` is null, else `bounded` with it as the bound. */
  private lookup(
    callback: Callback<MilestoneSnapshot | undefined> | undefined,
    collection: string, id: string, bound: number | null, boundName: 'version' | 'timestamp',
    whenNull: Statement, bounded: Statement,
  ): void {
    this.run(callback, () => {
      if (!isValidVersionOrNull(bound)) throw invalid(`Invalid ${boundName}`);
      this.checkDoc(collection, id);
      const row = bound === null ? whenNull.get(collection, id) : bounded.get(collection, id, bound);
      return toSnapshot(row as MilestoneRow | undefined);
    });
  }
}

export function createSqliteMilestoneDb(opts: SqliteMilestoneOptions): SqliteMilestoneDB {
  return new SqliteMilestoneDB(opts);
}
