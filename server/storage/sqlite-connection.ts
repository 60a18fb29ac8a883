/**
 * One SQLite connection with the pragmas Tandem needs, and its atomic writes: each write in
 * its own `BEGIN IMMEDIATE` transaction, or — group commit — every write of an event-loop
 * turn in one transaction, COMMITted once when the turn ends (on an idle server, a turn's
 * lone statement commits on its own: SqliteWriter.writeStatement).
 *
 * Group commit matters because the transaction is most of a commit's cost here: measured on
 * this 2-core VM (libsql, WAL, synchronous=NORMAL, one op row + one snapshot row per commit),
 * 76–82 µs per commit in its own transaction against 28–36 µs with 20 commits per
 * transaction; a read outside a transaction costs ~10 µs (it takes and drops a WAL read
 * lock), inside one ~3 µs.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'libsql';
import type ShareDB from 'sharedb';
import { TandemErrorCode } from '../../client/protocol.js';
import type { Turn } from '../turn.js';

export type SqliteSynchronous = 'FULL' | 'NORMAL';

export interface SqliteOptions {
  /** Database file; its parent directory is created if missing. `:memory:` works too. */
  path: string;
  /**
   * SQLite `synchronous` pragma. Default 'NORMAL': in WAL mode it loses nothing when the
   * process crashes (SIGKILL, OOM), only possibly the last transactions on power loss or an
   * OS crash. 'FULL' fsyncs every commit, measured here at ~5 ms per commit against ~30 µs
   * — and since libsql blocks the event loop, that 5 ms would stall every client of the
   * process on every op (a ceiling near 200 ops/s per process). Choose 'FULL' when an
   * acknowledged op must survive power loss.
   */
  synchronous?: SqliteSynchronous;
  /** How long a write waits for another process's write lock before failing. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * Group commit: every write of an event-loop turn goes into one transaction, COMMITted when
   * the turn ends and before anything held in `turn` is sent (see server/turn.ts). Only safe
   * when every way out of the process (acks, broadcasts, replies) waits for that turn, as
   * Tandem's transports and pub/sub do; unset, each commit is its own transaction.
   */
  turn?: Turn;
  /** Group commit only: how often this process tells others it writes the file (ms). */
  heartbeatMs?: number;
}

export const DEFAULT_SYNCHRONOUS: SqliteSynchronous = 'NORMAL';
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export type Connection = Database.Database;

/** An Error with a stable code, as ShareDB forwards `{code, message}` to clients. */
export function storageError(code: TandemErrorCode, message: string): Error & { code: TandemErrorCode } {
  return Object.assign(new Error(message), { code });
}

/**
 * @types/sharedb types error codes as numbers; ShareDB's (and ours, and libsql's) are
 * strings. This is the one cast, for callbacks typed with ShareDB's Error.
 */
export function asShareDbError(err: unknown): ShareDB.Error {
  const e = err instanceof Error ? err : new Error(String(err));
  if (typeof (e as { code?: unknown }).code !== 'string') Object.assign(e, { code: TandemErrorCode.STORAGE_ERROR });
  return e as unknown as ShareDB.Error;
}

/**
 * Group-commit writers of each file in this process. Before another connection to the file
 * opens (a second server, the milestone store, a reader), their open turn transactions are
 * COMMITted: the new connection's first write would otherwise wait, in this very thread, for
 * a lock that only the end of the turn releases. COMMITting early is safe: output still
 * waits for the end of the turn.
 */
const groupWriters = new Map<string, Set<SqliteWriter>>();

function fileKey(file: string): string | null {
  return file === ':memory:' ? null : path.resolve(file); // ':memory:' is private per connection
}

/** Opens a connection with the pragmas every Tandem connection to the file needs. */
export function openSqliteFile(opts: SqliteOptions): Connection {
  const key = fileKey(opts.path);
  if (key !== null) for (const writer of groupWriters.get(key) ?? []) writer.commitEarly();
  const synchronous = opts.synchronous ?? DEFAULT_SYNCHRONOUS;
  const busyTimeoutMs = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  // Both end up inside PRAGMA text, so only known values may pass.
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') {
    throw new Error(`synchronous must be 'FULL' or 'NORMAL', got ${String(synchronous)}`);
  }
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new Error(`busyTimeoutMs must be a non-negative integer, got ${busyTimeoutMs}`);
  }
  // Only the file's own folder (./data for the default path); config refuses deeper typos.
  if (opts.path !== ':memory:') {
    const dir = path.dirname(path.resolve(opts.path));
    if (!fs.existsSync(dir)) fs.mkdirSync(dir);
  }
  const conn = new Database(opts.path);
  try {
    // The timeout first, so switching to WAL waits for a process that is mid-write.
    conn.pragma(`busy_timeout = ${busyTimeoutMs}`);
    conn.pragma('journal_mode = WAL');
    conn.pragma(`synchronous = ${synchronous}`);
  } catch (err) {
    conn.close();
    throw err;
  }
  return conn;
}

/**
 * An error of SQLite's own (I/O, disk full, corruption) from a statement that commits on its
 * own: its COMMIT may have failed. Not a lock wait that timed out or a refused row: those
 * leave the file as it was and go to the caller, as a BEGIN that times out does.
 */
function failedItsCommit(err: unknown): err is Error {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_') && !/^SQLITE_(BUSY|LOCKED|CONSTRAINT)/.test(code);
}

/** Runs `fn` in a `BEGIN IMMEDIATE` transaction: the write lock is taken before any read. */
export function inWriteTransaction<T>(conn: Connection, fn: () => T): T {
  conn.exec('BEGIN IMMEDIATE');
  let done = false;
  try {
    const result = fn();
    conn.exec('COMMIT');
    done = true;
    return result;
  } finally {
    if (!done && conn.inTransaction) conn.exec('ROLLBACK');
  }
}

/**
 * The atomic writes of one connection. With a Turn (group commit) the first write of a turn
 * takes the write lock (`BEGIN IMMEDIATE`) and registers the COMMIT as the turn's durable
 * flush; each write runs inside a savepoint, so one that fails (or finds itself stale) undoes
 * only its own rows (an idle server's lone statement commits on its own: writeStatement).
 * Reads on the connection see the turn's writes, which is what ShareDB needs: the next
 * submit to a document builds on the commit before it, in the same turn.
 *
 * Other processes on the same file never see uncommitted rows (WAL isolation); while any
 * write the file (SqlitePeers), writes go back to one short transaction each, because a
 * lock held turn after turn starves them.
 */
export class SqliteWriter {
  private failure: Error | null = null;
  private readonly savepoint: Database.Statement;
  private readonly release: Database.Statement;
  private readonly rollbackTo: Database.Statement;

  /** True once a failed COMMIT has been thrown to the turn (it must fail the turn once). */
  private failureReported = false;
  private readonly key: string | null;
  /** Writes in the turn now running (group commit). */
  private turnWrites = 0;
  /** The last turn with writes had only one: the next turn's first statement runs on its own (see writeStatement). */
  private lastTurnSingle = true;
  /**
   * This writer opened the turn's transaction and has not COMMITted it. Kept here rather than
   * read from libsql's `inTransaction` on every write (a call into the native module), and
   * because the two differ exactly when it matters: SQLite may roll a transaction back by
   * itself after an error (see commit).
   */
  private transactionOpen = false;

  constructor(
    private readonly conn: Connection,
    /** The file (for the in-process registry of group-commit writers). */
    file: string,
    private readonly turn: Turn | null,
    /** False while other writers share the file: then each write is its own transaction. */
    private readonly mayGroup: () => boolean = () => true,
  ) {
    this.savepoint = conn.prepare('SAVEPOINT tandem_write');
    this.release = conn.prepare('RELEASE tandem_write');
    this.rollbackTo = conn.prepare('ROLLBACK TO tandem_write');
    this.key = turn ? fileKey(file) : null;
    if (this.key !== null) {
      const writers = groupWriters.get(this.key) ?? new Set<SqliteWriter>();
      writers.add(this);
      groupWriters.set(this.key, writers);
    }
  }

  /** How many group-commit writers of this process write this writer's file, this one included. */
  readonly groupWritersOfFile = (): number => (this.key === null ? 1 : (groupWriters.get(this.key)?.size ?? 0));

  /** Leaves the in-process registry (the connection is closing). */
  unregister(): void {
    if (this.key === null) return;
    const writers = groupWriters.get(this.key);
    writers?.delete(this);
    if (writers?.size === 0) groupWriters.delete(this.key);
  }

  /** Why a turn's writes could not be committed (see commit); writes have been refused since. */
  get failed(): Error | null {
    return this.failure;
  }

  /** Runs `fn` atomically; its writes are durable once this turn's COMMIT (or its own) ran. */
  write<T>(fn: () => T): T {
    if (this.failure) {
      throw storageError(
        TandemErrorCode.STORAGE_ERROR,
        `SQLite could not commit a turn earlier (${this.failure.message}); restart the server`,
      );
    }
    if (!this.turn || (!this.transactionOpen && !this.mayGroup())) return inWriteTransaction(this.conn, fn);
    this.countWrite(this.turn);
    if (!this.transactionOpen) this.begin(this.turn);
    this.savepoint.run();
    try {
      const result = fn();
      this.release.run();
      return result;
    } catch (err) {
      this.rollbackTo.run();
      this.release.run();
      throw err;
    }
  }

  /**
   * `write` for a function that runs exactly one statement: SQLite makes a statement atomic,
   * so inside the turn's transaction it needs no savepoint (two fewer calls per commit).
   *
   * An idle server's turn holds one commit, and there the statement runs as its own
   * transaction (SQLite's autocommit): BEGIN and COMMIT are two more calls into SQLite, each
   * taking and releasing locks, which cost a cold process about a fifth of the commit
   * (measured 175–190 µs against 220–235 with 3 ms between commits). The turn's first write
   * cannot know whether more follow, so the last turn decides: after a turn of one write the
   * next turn's first statement commits at once, and a second write in that turn opens the
   * turn's transaction as before. Either way it is durable before the turn sends anything,
   * and a statement whose own commit fails fails the turn as a failed COMMIT does.
   */
  writeStatement<T>(fn: () => T): T {
    const turn = this.turn;
    if (this.failure || !turn) return this.write(fn);
    if (!this.transactionOpen && !this.mayGroup()) return this.write(fn);
    const first = this.countWrite(turn);
    if (this.transactionOpen) return fn();
    if (first && this.lastTurnSingle) return this.autocommit(turn, fn);
    this.begin(turn);
    return fn();
  }

  private autocommit<T>(turn: Turn, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      // The statement was this turn's COMMIT: as with a failed group COMMIT, the turn fails
      // when it ends (commit() throws) and what it holds, the error reply too, is discarded,
      // so the client keeps its op for the resend. Other throws (a stale version) are the caller's.
      if (failedItsCommit(err)) {
        this.failure = err;
        this.failureReported = false;
        turn.beforeSend(this.commit);
      }
      throw err;
    }
  }

  /** Counts a group-commit write; true for the turn's first, which also books the turn's end. */
  private countWrite(turn: Turn): boolean {
    if (this.turnWrites++ > 0) return false;
    turn.beforeSend(this.turnEnded);
    return true;
  }

  private readonly turnEnded = (): void => {
    this.lastTurnSingle = this.turnWrites === 1;
    this.turnWrites = 0;
  };

  /** Opens the turn's transaction; its COMMIT is the turn's durable flush. */
  private begin(turn: Turn): void {
    this.conn.exec('BEGIN IMMEDIATE');
    this.transactionOpen = true;
    turn.beforeSend(this.commit);
  }

  /**
   * COMMITs the turn's writes: the turn's durable flush, and before the connection closes. A
   * failed COMMIT rolls the turn back and fails every later write: the writes were already
   * reported as done to ShareDB, so the server must stop (Turn discards what it held).
   *
   * So is a transaction that is gone before its COMMIT: after SQLITE_FULL, SQLITE_IOERR,
   * SQLITE_NOMEM or SQLITE_BUSY in one of its statements SQLite may roll back the whole
   * transaction, not just that statement, and the turn's earlier writes with it. Sending
   * their acks would acknowledge ops that are not in the file.
   */
  readonly commit = (): void => {
    if (this.failure && !this.failureReported) {
      this.failureReported = true;
      throw this.failure; // an early COMMIT failed: the turn must still fail
    }
    if (!this.transactionOpen) return;
    this.transactionOpen = false;
    if (!this.conn.open) return;
    if (!this.conn.inTransaction) {
      this.failure = storageError(
        TandemErrorCode.STORAGE_ERROR,
        "SQLite rolled back the turn's transaction after an error in one of its statements",
      );
      this.failureReported = true;
      throw this.failure;
    }
    try {
      this.conn.exec('COMMIT');
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.failureReported = true;
      if (this.conn.inTransaction) this.conn.exec('ROLLBACK');
      throw err;
    }
  };

  /** COMMITs now, before the turn ends; a failure is reported to the turn when it ends. */
  commitEarly(): void {
    try {
      this.commit();
    } catch {
      this.failureReported = false;
    }
  }
}
