/**
 * In-process storage: ShareDB's MemoryDB with the same query language as SqliteDB
 * (mingo-query.ts), and ShareDB's MemoryMilestoneDB. Data lives only as long as the process:
 * for tests, demos and `DB_URL=memory:`.
 */
import ShareDB from 'sharedb';
import {
  canPollDoc as canPollDocQuery,
  matchesQuery,
  runQuery,
  type QueryResult,
  type QuerySnapshot,
} from './mingo-query.js';

type Callback<T> = (err: Error | null, result?: T) => void;

/*
 * MemoryDB's internals (lib/db/memory.js) that we hook, untyped in @types/sharedb:
 * `query` calls `_querySync(snapshots, query, options)`; `_getSnapshotSync` reads one doc.
 */
interface MemoryDbInternals {
  _getSnapshotSync(collection: string, id: string, includeMetadata: boolean): QuerySnapshot;
}

export class TandemMemoryDB extends ShareDB.MemoryDB {
  /** Set by MemoryDB.close(); MemoryDB itself keeps serving after it. */
  declare readonly closed: boolean;

  /** Called by MemoryDB.query with the collection's live snapshots. */
  _querySync(snapshots: QuerySnapshot[], query: unknown): QueryResult<QuerySnapshot> {
    return runQuery(snapshots, query);
  }

  override queryPollDoc(
    collection: string, id: string, query: unknown, _options: unknown, callback: Callback<boolean>,
  ): void {
    process.nextTick(() => {
      let matches: boolean;
      try {
        const self = this as unknown as MemoryDbInternals;
        matches = matchesQuery(self._getSnapshotSync(collection, id, true), query);
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback(null, matches);
    });
  }

  // @types/sharedb declares canPollDoc without the (collection, query) ShareDB passes.
  override canPollDoc(_collection?: string, query?: unknown): boolean {
    return canPollDocQuery(query);
  }
}

export function createMemoryDb(): TandemMemoryDB {
  return new TandemMemoryDB();
}

/*
 * MemoryMilestoneDB is exported at runtime (sharedb/lib/index.js) but missing from
 * @types/sharedb; its constructor takes {interval}.
 */
type MilestoneDbCtor = new (options?: { interval?: number }) => ShareDB.MilestoneDB & {
  interval?: number;
};

export function createMemoryMilestoneDb(interval?: number): ShareDB.MilestoneDB {
  const MemoryMilestoneDB = (ShareDB as unknown as { MemoryMilestoneDB: MilestoneDbCtor })
    .MemoryMilestoneDB;
  return new MemoryMilestoneDB(interval === undefined ? undefined : { interval });
}
