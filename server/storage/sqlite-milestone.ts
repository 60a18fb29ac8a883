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
 * save waits for the end of the turn, after every COMMIT of SqliteDB released the write
 * lock: the milestone's own write would otherwise wait for that lock inside the same thread.
 */
import type Database from 'libsql';
import { TandemErrorCode } from '../../client/protocol.js';
import type { Turn } from '../turn.js';
import {
  checkLookup,
  checkSave,
  MilestoneStore,
  type MilestoneCallback as Callback,
  type MilestoneLookups,
  type MilestoneSnapshot,
} from './milestone-lookups.js';
import {
  asShareDbError,
  inWriteTransaction,
  openSqliteFile,
  storageError,
  type Connection,
  type SqliteOptions,
} from './sqlite-connection.js';

export { DEFAULT_MILESTONE_INTERVAL, type MilestoneSnapshot } from './milestone-lookups.js';

export interface SqliteMilestoneOptions extends SqliteOptions {
  /** Save a milestone every `interval` versions (DEFAULT_MILESTONE_INTERVAL, 1000). */
  interval?: number;
}

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

type Statement = Database.Statement<unknown[]>;
type MilestoneStatements = Record<'save' | 'atOrBeforeVersion' | 'latest' | 'first' | 'atOrBeforeTime' | 'atOrAfterTime', Statement>;

function prepareStatements(conn: Connection): MilestoneStatements {
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

export class SqliteMilestoneDB extends MilestoneStore<Statement> {
  readonly path: string;
  /** Set by close(); later calls fail instead of touching the closed handle. */
  private closed = false;
  private readonly conn: Connection;
  private readonly stmts: MilestoneStatements;
  private readonly turn: Turn | null;

  constructor(opts: SqliteMilestoneOptions) {
    super(opts.interval);
    this.turn = opts.turn ?? null;
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
      if (this.closed) throw storageError(TandemErrorCode.DB_CLOSED, 'SQLite milestone database is closed');
      result = work();
    } catch (err) {
      if (callback) process.nextTick(callback, err as Error);
      else process.nextTick(() => this.emitError(err));
      return;
    }
    if (callback) process.nextTick(callback, undefined, result);
  }

  protected override emitError(err: unknown): void {
    this.emit('error', asShareDbError(err));
  }

  protected override lookups(): MilestoneLookups<Statement> {
    return this.stmts;
  }

  override close(callback?: (err?: Error) => void): void {
    if (!this.closed) {
      this.closed = true;
      this.conn.close();
    }
    if (callback) process.nextTick(callback);
  }

  override saveMilestoneSnapshot(collection: string, snapshot: MilestoneSnapshot, callback?: (err?: Error) => void): void {
    const outcome = this.saveOutcome(collection, snapshot, callback);
    const save = () =>
      this.run(outcome, () => {
        checkSave(collection, snapshot);
        const mtime = snapshot.m?.mtime;
        this.stmts.save.run(
          collection,
          snapshot.id,
          snapshot.v,
          typeof mtime === 'number' ? mtime : null,
          snapshot.type ?? null,
          snapshot.data === undefined ? null : JSON.stringify(snapshot.data),
          snapshot.m == null ? null : JSON.stringify(snapshot.m),
        );
      });
    if (!this.turn) return save();
    // After every COMMIT of the turn (send flushes run after the durable ones), whenever the
    // turn's transaction opened: the save is on a connection of its own, and before that
    // COMMIT it would wait for a lock its own thread holds (measured: the whole server
    // stalled for the busy timeout, then the save failed with SQLITE_BUSY).
    this.turn.send((discard) => {
      if (!discard) return save();
      this.run(outcome, () => {
        throw storageError(TandemErrorCode.STORAGE_ERROR, 'milestone not saved: the commit it follows failed');
      });
    });
  }

  protected override lookup(
    callback: Callback<MilestoneSnapshot | undefined> | undefined,
    collection: string,
    id: string,
    bound: number | null,
    boundName: 'version' | 'timestamp',
    whenNull: Statement,
    bounded: Statement,
  ): void {
    this.run(callback, () => {
      checkLookup(collection, id, bound, boundName);
      const row = bound === null ? whenNull.get(collection, id) : bounded.get(collection, id, bound);
      return toSnapshot(row as MilestoneRow | undefined);
    });
  }
}

export function createSqliteMilestoneDb(opts: SqliteMilestoneOptions): SqliteMilestoneDB {
  return new SqliteMilestoneDB(opts);
}
