/**
 * PostgresMilestoneDB: ShareDB milestone snapshots in tandem_milestones, beside PostgresDB's
 * tables and on the same pool (PostgresStore), with SqliteMilestoneDB's semantics.
 *
 * Milestones let Backend.fetchSnapshot(version) start from the nearest saved snapshot at or
 * below the version and replay only the ops after it. ShareDB's SubmitRequest saves one
 * after a commit when `snapshot.v % interval === 0` (unless commit middleware sets
 * `request.saveMilestoneSnapshot`).
 */
import ShareDB from 'sharedb';
import { TandemError } from '../../client/protocol.js';
import { closedError, type PostgresStore } from './postgres-connection.js';
import { asShareDbError } from './postgres.js';
import { DEFAULT_MILESTONE_INTERVAL, type MilestoneSnapshot } from './sqlite-milestone.js';

export interface PostgresMilestoneOptions {
  store: PostgresStore;
  /** Save a milestone every `interval` versions. Default 1000 (see SqliteMilestoneOptions). */
  interval?: number;
}

// @types/sharedb's BasicCallback shape: no error is `undefined`, not null.
type Callback<T> = (err?: Error, result?: T) => void;

interface MilestoneRow {
  id: string;
  v: number;
  type: string | null;
  data: unknown;
  metadata: Record<string, unknown> | null;
}

function invalid(message: string): TandemError {
  return new TandemError('ERR_MILESTONE_ARGUMENT_INVALID', message);
}

// Same rule as ShareDB's util.isValidVersion / isValidTimestamp: null or an integer >= 0.
function isValidVersionOrNull(value: unknown): value is number | null {
  return value === null || (Number.isInteger(value) && (value as number) >= 0);
}

function toSnapshot(row: MilestoneRow | undefined): MilestoneSnapshot | undefined {
  if (!row) return undefined;
  return { id: row.id, v: row.v, type: row.type, data: row.data ?? undefined, m: row.metadata };
}

function statements(table: string) {
  const select = `SELECT id, v, type, data, metadata FROM ${table} WHERE collection = $1 AND id = $2`;
  return {
    save: `INSERT INTO ${table} (collection, id, v, mtime, type, data, metadata)
      VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)
      ON CONFLICT (collection, id, v) DO UPDATE SET
        mtime = EXCLUDED.mtime, type = EXCLUDED.type, data = EXCLUDED.data, metadata = EXCLUDED.metadata`,
    atOrBeforeVersion: `${select} AND v <= $3 ORDER BY v DESC LIMIT 1`,
    latest: `${select} ORDER BY v DESC LIMIT 1`,
    first: `${select} ORDER BY v ASC LIMIT 1`,
    atOrBeforeTime: `${select} AND mtime <= $3 ORDER BY mtime DESC, v DESC LIMIT 1`,
    atOrAfterTime: `${select} AND mtime >= $3 ORDER BY mtime ASC, v ASC LIMIT 1`,
  };
}

export class PostgresMilestoneDB extends ShareDB.MilestoneDB {
  /** Read by ShareDB's SubmitRequest (`snapshot.v % interval === 0`). */
  readonly interval: number;
  readonly store: PostgresStore;
  private closing: Promise<void> | null = null;
  private readonly sql: ReturnType<typeof statements>;

  constructor(opts: PostgresMilestoneOptions) {
    super();
    const interval = opts.interval ?? DEFAULT_MILESTONE_INTERVAL;
    if (!Number.isInteger(interval) || interval < 1) {
      throw new Error(`milestone interval must be a positive integer, got ${interval}`);
    }
    this.interval = interval;
    this.store = opts.store;
    this.sql = statements(opts.store.tables.milestones);
    opts.store.retain();
  }

  /**
   * Runs `work` and reports through `callback`, outside the promise chain. Without a
   * callback an error becomes an 'error' event, as in ShareDB's MilestoneDB base class.
   */
  private run<T>(callback: Callback<T> | undefined, work: () => Promise<T>): void {
    const promise = this.closing ? Promise.reject(closedError('PostgreSQL milestone database')) : work();
    promise.then(
      (result) => callback && process.nextTick(callback, undefined, result),
      (err: unknown) => {
        const error = asShareDbError(err) as unknown as Error;
        if (callback) process.nextTick(callback, error);
        else process.nextTick(() => this.emitError(error));
      },
    );
  }

  /**
   * An 'error' event, as ShareDB's MilestoneDB emits it — but only to a listener: ShareDB
   * saves milestones after a commit without a callback or a listener, and an 'error' nobody
   * listens to would crash the process when PostgreSQL blips. A lost milestone costs only a
   * longer replay when an old version is fetched.
   */
  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err as unknown as ShareDB.Error);
  }

  /** Releases the pool (ended when PostgresDB is closed too); idempotent. */
  override close(callback?: (err?: Error) => void): void {
    this.closing ??= this.store.release();
    this.closing.then(
      () => callback && process.nextTick(callback),
      (err: unknown) => callback && process.nextTick(callback, err as Error),
    );
  }

  override saveMilestoneSnapshot(
    collection: string, snapshot: MilestoneSnapshot, callback?: (err?: Error) => void,
  ): void {
    // Without a callback (how SubmitRequest calls it) the outcome is an event, as in ShareDB.
    const done: Callback<void> = (err) => {
      if (callback) callback(err);
      else if (!err) this.emit('save', collection, snapshot as ShareDB.Snapshot);
      else this.emitError(err);
    };
    this.run(done, async () => {
      if (!collection) throw invalid('Missing collection');
      if (!snapshot) throw invalid('Missing snapshot');
      const mtime = snapshot.m?.mtime;
      await this.store.query(this.sql.save, [
        collection, snapshot.id, snapshot.v, typeof mtime === 'number' ? mtime : null,
        snapshot.type ?? null,
        snapshot.data === undefined ? null : JSON.stringify(snapshot.data),
        snapshot.m == null ? null : JSON.stringify(snapshot.m),
      ]);
    });
  }

  /** The newest milestone with v <= version (any version when null); undefined if none. */
  override getMilestoneSnapshot(
    collection: string, id: string, version: number | null,
    callback?: Callback<MilestoneSnapshot | undefined>,
  ): void {
    this.lookup(callback, collection, id, version, 'version', this.sql.latest, this.sql.atOrBeforeVersion);
  }

  /** The newest milestone with mtime <= timestamp; for null, the first milestone. */
  override getMilestoneSnapshotAtOrBeforeTime(
    collection: string, id: string, timestamp: number | null,
    callback?: Callback<MilestoneSnapshot | undefined>,
  ): void {
    this.lookup(callback, collection, id, timestamp, 'timestamp', this.sql.first, this.sql.atOrBeforeTime);
  }

  /** The oldest milestone with mtime >= timestamp; for null, the latest milestone. */
  override getMilestoneSnapshotAtOrAfterTime(
    collection: string, id: string, timestamp: number | null,
    callback?: Callback<MilestoneSnapshot | undefined>,
  ): void {
    this.lookup(callback, collection, id, timestamp, 'timestamp', this.sql.latest, this.sql.atOrAfterTime);
  }

  /** One milestone row: `whenNull` when `bound` is null, else `bounded` with it as the bound. */
  private lookup(
    callback: Callback<MilestoneSnapshot | undefined> | undefined,
    collection: string, id: string, bound: number | null, boundName: 'version' | 'timestamp',
    whenNull: string, bounded: string,
  ): void {
    this.run(callback, async () => {
      if (!isValidVersionOrNull(bound)) throw invalid(`Invalid ${boundName}`);
      if (!collection) throw invalid('Missing collection');
      if (!id) throw invalid('Missing ID');
      const result = bound === null
        ? await this.store.query<MilestoneRow>(whenNull, [collection, id])
        : await this.store.query<MilestoneRow>(bounded, [collection, id, bound]);
      return toSnapshot(result.rows[0]);
    });
  }
}

export function createPostgresMilestoneDb(opts: PostgresMilestoneOptions): PostgresMilestoneDB {
  return new PostgresMilestoneDB(opts);
}
