/**
 * The query side of a ShareDB DB adapter, written once for SqliteDB, PostgresDB and
 * TandemMemoryDB: ShareDB's `query`, `queryPoll`, `queryPollDoc` and `canPollDoc`, and
 * `setQueryLimits`. The stores differ only in how they run a query (in process, in slices,
 * or translated to SQL), which each hands over as its QueryRunner.
 */
import type ShareDB from 'sharedb';
import type { QueryLimitedDb, QueryLimits } from '../limits/query-options.js';
import type { QuerySnapshot } from './mingo-query.js';
import { withStorageCode } from './storage-errors.js';

/** A ShareDB-style callback: an error, or the result. */
export type Callback<T> = (err: Error | null, result?: T) => void;

/** How a store runs queries. Each method answers through its callback, never by throwing. */
export interface QueryRunner {
  /** MAX_QUERY_SCAN, MAX_QUERY_RESULTS (server/limits/query-options.ts). */
  setLimits(limits: QueryLimits): void;
  /** The matching snapshots, metadata only if `options.metadata`. */
  query(collection: string, query: unknown, options: unknown, callback: Callback<{ snapshots: QuerySnapshot[]; extra?: unknown }>): void;
  /** The matching ids, for a subscribed query's re-poll. */
  queryPoll(collection: string, query: unknown, options: unknown, callback: Callback<{ ids: string[]; extra?: unknown }>): void;
  /** Whether one document matches now (after an op on it). */
  pollDoc(collection: string, id: string, query: unknown, callback: Callback<boolean>): void;
  /** Whether `pollDoc` can decide for this query (no sort, skip or limit across documents). */
  canPollDoc(query: unknown): boolean;
}

// TypeScript's rule for mixins: the base's constructor takes `any[]`. Each store's own
// constructor, typed, is what callers see.
// biome-ignore lint/suspicious/noExplicitAny: required by TypeScript for a mixin's base constructor
type DbClass = abstract new (...args: any[]) => ShareDB.DB;

/** `Base` (ShareDB.DB or MemoryDB) answering ShareDB's queries with the store's `queryRunner`. */
export function withQueries<Base extends DbClass>(Base: Base) {
  abstract class QueryingDB extends Base implements QueryLimitedDb {
    /**
     * @internal The store's query runner. Public: a declaration file cannot name a mixin's
     * protected member (TS4094).
     */
    abstract readonly queryRunner: QueryRunner;

    /** Caps client queries (MAX_QUERY_SCAN, MAX_QUERY_RESULTS); set by useQueryLimits. */
    setQueryLimits(limits: QueryLimits): void {
      this.queryRunner.setLimits(limits);
    }

    // A property, not a method: @types/sharedb declares `query` as one.
    override query = (collection: string, query: unknown, _fields: unknown, options: unknown, callback: ShareDB.DBQueryCallback): void => {
      this.queryRunner.query(collection, query, options, (err, result) => {
        // @types/sharedb types errors with numeric codes and snapshots with full metadata;
        // ours carry string codes (TANDEM_…) and the metadata the store holds.
        if (err) callback(withStorageCode(err) as unknown as ShareDB.Error, []);
        else callback(null, result!.snapshots as unknown as ShareDB.Snapshot[], result!.extra);
      });
    };

    override queryPoll(
      collection: string,
      query: unknown,
      options: unknown,
      callback: (err: Error | null, ids?: string[], extra?: unknown) => void,
    ): void {
      this.queryRunner.queryPoll(collection, query, options, (err, result) => {
        if (err) callback(withStorageCode(err));
        else callback(null, result!.ids, result!.extra);
      });
    }

    override queryPollDoc(collection: string, id: string, query: unknown, _options: unknown, callback: Callback<boolean>): void {
      this.queryRunner.pollDoc(collection, id, query, (err, matches) => callback(err && withStorageCode(err), matches));
    }

    // @types/sharedb declares canPollDoc without the (collection, query) ShareDB passes.
    override canPollDoc(_collection?: string, query?: unknown): boolean {
      return this.queryRunner.canPollDoc(query);
    }
  }
  return QueryingDB;
}
