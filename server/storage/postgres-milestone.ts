/**
 * PostgresMilestoneDB: ShareDB milestone snapshots in tandem_milestones, beside PostgresDB's
 * tables and on the same pool (PostgresStore), with SqliteMilestoneDB's semantics.
 *
 * Milestones let Backend.fetchSnapshot(version) start from the nearest saved snapshot at or
 * below the version and replay only the ops after it. ShareDB's SubmitRequest saves one
 * after a commit when `snapshot.v % interval === 0` (unless commit middleware sets
 * `request.saveMilestoneSnapshot`).
 */
import {
  checkLookup,
  checkSave,
  MilestoneStore,
  type MilestoneCallback as Callback,
  type MilestoneLookups,
  type MilestoneSnapshot,
} from './milestone-lookups.js';
import { closedError, type PostgresStore } from './postgres-connection.js';
import { asShareDbError } from './postgres.js';

export interface PostgresMilestoneOptions {
  store: PostgresStore;
  /** Save a milestone every `interval` versions. Default 1000 (see SqliteMilestoneOptions). */
  interval?: number;
}

interface MilestoneRow {
  id: string;
  v: number;
  type: string | null;
  data: unknown;
  metadata: Record<string, unknown> | null;
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

export class PostgresMilestoneDB extends MilestoneStore<string> {
  readonly store: PostgresStore;
  private closing: Promise<void> | null = null;
  private readonly sql: ReturnType<typeof statements>;

  constructor(opts: PostgresMilestoneOptions) {
    super(opts.interval);
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
  protected override emitError(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', asShareDbError(err));
  }

  protected override lookups(): MilestoneLookups<string> {
    return this.sql;
  }

  /** Releases the pool (ended when PostgresDB is closed too); idempotent. */
  override close(callback?: (err?: Error) => void): void {
    this.closing ??= this.store.release();
    this.closing.then(
      () => callback && process.nextTick(callback),
      (err: unknown) => callback && process.nextTick(callback, err as Error),
    );
  }

  override saveMilestoneSnapshot(collection: string, snapshot: MilestoneSnapshot, callback?: (err?: Error) => void): void {
    this.run(this.saveOutcome(collection, snapshot, callback), async () => {
      checkSave(collection, snapshot);
      const mtime = snapshot.m?.mtime;
      await this.store.query(this.sql.save, [
        collection,
        snapshot.id,
        snapshot.v,
        typeof mtime === 'number' ? mtime : null,
        snapshot.type ?? null,
        snapshot.data === undefined ? null : JSON.stringify(snapshot.data),
        snapshot.m == null ? null : JSON.stringify(snapshot.m),
      ]);
    });
  }

  protected override lookup(
    callback: Callback<MilestoneSnapshot | undefined> | undefined,
    collection: string,
    id: string,
    bound: number | null,
    boundName: 'version' | 'timestamp',
    whenNull: string,
    bounded: string,
  ): void {
    this.run(callback, async () => {
      checkLookup(collection, id, bound, boundName);
      const result =
        bound === null
          ? await this.store.query<MilestoneRow>(whenNull, [collection, id])
          : await this.store.query<MilestoneRow>(bounded, [collection, id, bound]);
      return toSnapshot(result.rows[0]);
    });
  }
}

export function createPostgresMilestoneDb(opts: PostgresMilestoneOptions): PostgresMilestoneDB {
  return new PostgresMilestoneDB(opts);
}
