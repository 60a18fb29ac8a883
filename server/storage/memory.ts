/**
 * In-process storage: ShareDB's MemoryDB with the same query language and limits as SqliteDB
 * (mingo-query.ts, server/limits/query-executor.ts), and ShareDB's MemoryMilestoneDB. Data lives only as long as the process:
 * for tests, demos and `DB_URL=memory:`.
 */
import ShareDB from 'sharedb';
import { QueryExecutor, type ScanSource } from '../limits/query-executor.js';
import { QueryScanner, type ScannerOptions } from '../limits/query-scan.js';
import type { QuerySnapshot } from './mingo-query.js';
import { withQueries } from './query-methods.js';

/*
 * MemoryDB's internals (lib/db/memory.js) that we read, untyped in @types/sharedb: `docs`
 * holds the stored snapshot of each live document by collection and id (deleted ones are
 * removed); `_getSnapshotSync` returns a copy of one, metadata optional.
 */
interface MemoryDbInternals {
  docs: Record<string, Record<string, QuerySnapshot> | undefined>;
  _getSnapshotSync(collection: string, id: string, includeMetadata: boolean): QuerySnapshot;
}

export interface MemoryDbOptions {
  /** How queries are sliced (query-scan.ts); the defaults serve a server. */
  queryScanner?: ScannerOptions;
}

export class TandemMemoryDB extends withQueries(ShareDB.MemoryDB) {
  /** Set by MemoryDB.close(); MemoryDB itself keeps serving after it. */
  declare readonly closed: boolean;
  /** Queries as SqliteDB runs them: validated first, bounded, in slices. */
  readonly queryRunner: QueryExecutor;

  constructor(options: MemoryDbOptions = {}) {
    super();
    this.queryRunner = new QueryExecutor(this.querySource(), new QueryScanner(options.queryScanner));
  }

  private querySource(): ScanSource {
    const self = this as unknown as MemoryDbInternals;
    const docsOf = (collection: string) => self.docs[collection] ?? {};
    const live = (collection: string, id: string, withMeta: boolean) => {
      const stored = docsOf(collection)[id];
      return stored && stored.type != null ? self._getSnapshotSync(collection, id, withMeta) : null;
    };
    return {
      countLive: (collection, atMost) => {
        let n = 0;
        for (const _id in docsOf(collection)) if (++n > atMost) break;
        return n;
      },
      readIds: (collection, ids, withMeta) => ids.flatMap((id) => live(collection, id, withMeta) ?? []),
      openCursor: (collection, withMeta) => {
        // The ids as of the start; documents are read (copied) when their page comes.
        const ids = Object.keys(docsOf(collection));
        let at = 0;
        return {
          next: (max) => {
            if (at >= ids.length) return null;
            const page = ids.slice(at, at + max);
            at += page.length;
            return page.flatMap((id) => live(collection, id, withMeta) ?? []);
          },
        };
      },
      readVersion: (collection, id) => docsOf(collection)[id]?.v ?? null,
      readOne: (collection, id) => self._getSnapshotSync(collection, id, true),
    };
  }
}

export function createMemoryDb(options: MemoryDbOptions = {}): TandemMemoryDB {
  return new TandemMemoryDB(options);
}

/*
 * MemoryMilestoneDB is exported at runtime (sharedb/lib/index.js) but missing from
 * @types/sharedb; its constructor takes {interval}.
 */
type MilestoneDbCtor = new (options?: {
  interval?: number;
}) => ShareDB.MilestoneDB & {
  interval?: number;
};

export function createMemoryMilestoneDb(interval?: number): ShareDB.MilestoneDB {
  const MemoryMilestoneDB = (ShareDB as unknown as { MemoryMilestoneDB: MilestoneDbCtor }).MemoryMilestoneDB;
  return new MemoryMilestoneDB(interval === undefined ? undefined : { interval });
}
