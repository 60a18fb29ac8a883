/**
 * MongoDB storage: sharedb-mongo (snapshots + ops) and sharedb-milestone-mongo, sharing one
 * MongoClient.
 *
 * The client is handed over through the callback-style factory both packages accept, and
 * the factory never reports an error: a failed connect there would leave sharedb-mongo with
 * a permanently rejected (and unhandled) connection promise. Instead the driver connects on
 * first use, and ping() calls client.connect() first — needed because driver 6 closes the
 * topology after a failed first connect (later operations fail with
 * MongoTopologyClosedError, measured here) and connect() is what re-opens it. So the
 * readiness probe both reports an unreachable MongoDB and recovers once it is back.
 *
 * Indexes: sharedb-mongo creates the ones its README recommends on each ops collection
 * (`o_<collection>`: {d: 1, v: 1} for getOps and {src: 1, seq: 1, v: 1} for resent-op
 * detection) the first time it touches that collection, and sharedb-milestone-mongo creates
 * {d: 1, v: 1} (unique) and {'m.mtime': 1} on `m_<collection>`. We keep that automatic
 * creation on (`disableIndexCreation` unset): collections are named by clients, so no fixed
 * list could be created up front.
 */
import { createRequire } from 'node:module';
import { MongoClient, type MongoClientOptions } from 'mongodb';
import type ShareDB from 'sharedb';
import { DEFAULT_MILESTONE_INTERVAL } from './sqlite-milestone.js';
import { withStorageErrorCodes } from './storage-errors.js';

export interface MongoStorageOptions {
  /** mongodb:// or mongodb+srv:// URL; its path names the database. */
  url: string;
  /** Save a milestone snapshot every N versions. Default 1000. */
  milestoneInterval?: number;
  mongoOptions?: MongoClientOptions;
}

export interface MongoStorage {
  db: ShareDB.DB;
  milestoneDb: ShareDB.MilestoneDB;
  client: MongoClient;
  ping(): Promise<void>;
  close(): Promise<void>;
}

type ClientFactory = (callback: (err: Error | null, client?: MongoClient) => void) => void;

// Neither package ships types; these are the constructors as their READMEs document them.
const require = createRequire(import.meta.url);
const ShareDbMongo = require('sharedb-mongo') as new (options: { mongo: ClientFactory }) => ShareDB.DB;
const MongoMilestoneDB = require('sharedb-milestone-mongo') as new (options: {
  mongo: ClientFactory;
  interval: number;
}) => ShareDB.MilestoneDB;

function closeWith(close: (cb: (err?: Error) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => close((err) => (err ? reject(err) : resolve())));
}

export function createMongoStorage(opts: MongoStorageOptions): MongoStorage {
  // Throws synchronously on a malformed URL, which is what a config error should do.
  const client = new MongoClient(opts.url, opts.mongoOptions);
  const factory: ClientFactory = (callback) => callback(null, client);
  const db = withStorageErrorCodes(new ShareDbMongo({ mongo: factory }));
  const milestoneDb = withStorageErrorCodes(
    new MongoMilestoneDB({
      mongo: factory,
      interval: opts.milestoneInterval ?? DEFAULT_MILESTONE_INTERVAL,
    }),
  );

  let closing: Promise<void> | undefined;
  return {
    db,
    milestoneDb,
    client,
    async ping() {
      await client.connect(); // no-op when connected; re-opens after a failed first connect
      await client.db().command({ ping: 1 });
    },
    close() {
      closing ??= (async () => {
        // Either may already be closed by ShareDB's Backend.close(): sharedb-mongo ignores
        // that itself, sharedb-milestone-mongo reports MONGO_CLOSED, which we ignore.
        await closeWith((cb) => db.close(cb));
        await closeWith((cb) => milestoneDb.close(cb)).catch((err: { code?: string }) => {
          if (err.code !== 'MONGO_CLOSED') throw err;
        });
        await client.close();
      })();
      return closing;
    },
  };
}
