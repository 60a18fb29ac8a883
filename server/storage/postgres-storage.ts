/**
 * PostgreSQL storage: PostgresDB and PostgresMilestoneDB sharing one PostgresStore (pool and
 * schema), as openStorage hands them to ShareDB.
 */
import { PostgresStore, type PostgresOptions } from './postgres-connection.js';
import { PostgresMilestoneDB } from './postgres-milestone.js';
import { PostgresDB } from './postgres.js';

export interface PostgresStorageOptions extends PostgresOptions {
  /** Save a milestone snapshot every N versions. Default 1000. */
  milestoneInterval?: number;
  /** SNAPSHOT_CACHE_MB in bytes (postgres-snapshots.ts); default 128 MiB, 0 off. */
  snapshotCacheBytes?: number;
}

export interface PostgresStorage {
  db: PostgresDB;
  milestoneDb: PostgresMilestoneDB;
  store: PostgresStore;
  /** Resolves or rejects within 2 s (PING_TIMEOUT_MS), migrating the schema first if needed. */
  ping(): Promise<void>;
  /** Closes both stores, which ends the pool; idempotent. */
  close(): Promise<void>;
}

function closeWith(close: (cb: (err?: Error) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => close((err) => (err ? reject(err) : resolve())));
}

/**
 * Opens nothing yet (the pool connects and the schema migrates on first use), so it
 * throws only for a malformed URL or option. Await `ping()` to know PostgreSQL is there.
 */
export function createPostgresStorage(opts: PostgresStorageOptions): PostgresStorage {
  const store = new PostgresStore(opts);
  const db = new PostgresDB(store, { snapshotCacheBytes: opts.snapshotCacheBytes });
  const milestoneDb = new PostgresMilestoneDB({ store, interval: opts.milestoneInterval });
  let closing: Promise<void> | undefined;
  return {
    db,
    milestoneDb,
    store,
    ping: () => db.ping(),
    close() {
      closing ??= (async () => {
        await closeWith((cb) => db.close(cb));
        await closeWith((cb) => milestoneDb.close(cb));
      })();
      return closing;
    },
  };
}

/** createPostgresStorage, resolved once the schema is migrated (rejects, pool ended, if it cannot be). */
export async function openPostgresStorage(opts: PostgresStorageOptions): Promise<PostgresStorage> {
  const storage = createPostgresStorage(opts);
  try {
    await storage.store.ready();
  } catch (err) {
    await storage.close().catch(() => undefined);
    throw err;
  }
  return storage;
}
