/**
 * How the in-process stores (SQLite, memory) answer ShareDB's query calls within the limits:
 *
 *   1. compile: parse and validate the query (TANDEM_INVALID_QUERY) before anything is read;
 *   2. plan: a filter naming its documents by `_id` reads only those; any other query needs
 *      a scan, refused (TANDEM_QUERY_TOO_LARGE) when the collection holds more than
 *      MAX_QUERY_SCAN live documents — found by counting at most that many, never by reading;
 *   3. run in the QueryScanner, slice by slice, stopping early once more than
 *      MAX_QUERY_RESULTS documents would be returned.
 *
 * The application's own connections (server-side, marked by the 'query' middleware) are not
 * capped, but their queries run in slices all the same.
 */
import { canPollDoc, compileQuery, toMongoDoc, type CompiledQuery, type QueryResult, type QuerySnapshot } from '../storage/mingo-query.js';
import type { Callback } from '../storage/query-methods.js';
import { QueryTooLargeError } from './query-errors.js';
import { capsFor, DEFAULT_QUERY_LIMITS, ownerOf, type QueryLimits } from './query-options.js';
import { QueryRun } from './query-run.js';
import { QueryScanner, type ScanJob } from './query-scan.js';
import { docKey } from '../doc-key.js';

/** Documents read per page; the scanner checks its slice deadline between pages. */
const PAGE_SIZE = 64;
/** Recently polled documents kept parsed (see readForPoll): one op's document, and the one before. */
const POLL_CACHE_SIZE = 2;

/** Reads a page of live snapshots at a time, in a stable order. */
export interface ScanCursor {
  /** Up to `max` more live snapshots, or null at the end. */
  next(max: number): QuerySnapshot[] | null;
}

/** What a store provides for queries. Every read is synchronous and may throw (closed store). */
export interface ScanSource {
  /** Live documents in the collection, counting no further than `atMost + 1`. */
  countLive(collection: string, atMost: number): number;
  /** The live ones among these documents (`m` null unless `withMeta`). */
  readIds(collection: string, ids: string[], withMeta: boolean): QuerySnapshot[];
  /** Every live document of the collection, a page at a time (`m` null unless `withMeta`). */
  openCursor(collection: string, withMeta: boolean): ScanCursor;
  /** The document's current version (0 or null when it never existed). */
  readVersion(collection: string, id: string): number | null;
  /** The document now (metadata included; type null when deleted or missing). */
  readOne(collection: string, id: string): QuerySnapshot;
}

/** What a finished query hands back: snapshots for `query`, ids for `queryPoll`. */
export interface PollResult {
  ids: string[];
  extra?: unknown;
}

function idCursor(source: ScanSource, collection: string, ids: string[], withMeta: boolean): ScanCursor {
  // Results without $sort come back in the order a scan would give (SQLite's: UTF-8 bytes).
  const sorted = [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let at = 0;
  return {
    next(max) {
      if (at >= sorted.length) return null;
      const page = sorted.slice(at, at + max);
      at += page.length;
      return source.readIds(collection, page, withMeta);
    },
  };
}

class QueryJob<T> implements ScanJob<T> {
  private readonly run: QueryRun<QuerySnapshot>;
  private scanned = 0;
  private output: T | null = null;

  constructor(
    private readonly cursor: ScanCursor,
    compiled: CompiledQuery,
    private readonly caps: QueryLimits,
    private readonly finish: (result: QueryResult<QuerySnapshot>) => T,
  ) {
    this.run = new QueryRun(compiled, caps.maxResults);
  }

  step(deadline: number): boolean {
    do {
      const page = this.cursor.next(PAGE_SIZE);
      if (page === null) {
        this.output = this.finish(this.run.finish());
        return true;
      }
      this.scanned += page.length;
      // The collection may have grown since it was counted.
      if (this.scanned > this.caps.maxScan) throw tooManyToScan(this.caps.maxScan);
      for (const snapshot of page) this.run.add(snapshot);
      if (this.run.done) {
        this.output = this.finish(this.run.finish());
        return true;
      }
    } while (performance.now() < deadline);
    return false;
  }

  result(): T {
    return this.output as T;
  }
}

function tooManyToScan(maxScan: number): QueryTooLargeError {
  return new QueryTooLargeError(
    `the collection holds more than ${maxScan} documents (MAX_QUERY_SCAN): a query over it must name its documents by _id`,
  );
}

export class QueryExecutor {
  private limits: QueryLimits = DEFAULT_QUERY_LIMITS;
  /** Parsed documents of the last polls, by `collection\0id`: one op re-checks every subscription on one document. */
  private readonly pollCache = new Map<string, { v: number | null; snapshot: QuerySnapshot }>();
  /** Compiled subscription queries: ShareDB passes the same query object at every poll. */
  private readonly compiledByQuery = new WeakMap<object, CompiledQuery>();

  constructor(
    private readonly source: ScanSource,
    readonly scanner = new QueryScanner(),
  ) {}

  setLimits(limits: QueryLimits): void {
    this.limits = limits;
  }

  /** ShareDB's `db.query`: snapshots (metadata only if `options.metadata`) and extra. */
  query(collection: string, query: unknown, options: unknown, callback: Callback<QueryResult<QuerySnapshot>>): void {
    const withMeta = Boolean((options as { metadata?: unknown } | null)?.metadata);
    this.submit(
      collection,
      query,
      options,
      null,
      withMeta,
      (result) => {
        if (!withMeta) for (const s of result.snapshots) s.m = null;
        return result;
      },
      callback,
    );
  }

  /** ShareDB's `db.queryPoll`: ids and extra. Identical polls waiting together run once. */
  queryPoll(collection: string, query: unknown, options: unknown, callback: Callback<PollResult>): void {
    const caps = capsFor(options, this.limits);
    let key: string | null;
    try {
      key = `${collection}\u0000${caps.maxScan}\u0000${caps.maxResults}\u0000${JSON.stringify(query)}`;
    } catch {
      key = null;
    }
    this.submit(
      collection,
      query,
      options,
      key,
      false,
      (result) => ({ ids: result.snapshots.map((s) => s.id), extra: result.extra }),
      (err, result) => {
        // Each subscription keeps (and later edits) its own id list.
        callback(err, result && { ids: [...result.ids], extra: result.extra });
      },
    );
  }

  private submit<T>(
    collection: string,
    query: unknown,
    options: unknown,
    key: string | null,
    metadataWanted: boolean,
    finish: (result: QueryResult<QuerySnapshot>) => T,
    callback: Callback<T>,
  ): void {
    let compiled: CompiledQuery;
    try {
      compiled = compileQuery(query);
    } catch (err) {
      process.nextTick(callback, err as Error);
      return;
    }
    const caps = capsFor(options, this.limits);
    // Parsing metadata is a good share of a scan's cost: only when the query or caller needs it.
    const withMeta = metadataWanted || compiled.readsMetadata;
    this.scanner.submit(
      ownerOf(options),
      key,
      () => {
        if (compiled.ids) {
          // Named documents are read, not scanned (at most MAX_QUERY_NODES of them).
          return new QueryJob(idCursor(this.source, collection, compiled.ids, withMeta), compiled, { ...caps, maxScan: Infinity }, finish);
        }
        if (Number.isFinite(caps.maxScan) && this.source.countLive(collection, caps.maxScan) > caps.maxScan) {
          throw tooManyToScan(caps.maxScan);
        }
        return new QueryJob(this.source.openCursor(collection, withMeta), compiled, caps, finish);
      },
      callback,
    );
  }

  /** ShareDB's `db.queryPollDoc`: does this one document match now? */
  pollDoc(collection: string, id: string, query: unknown, callback: Callback<boolean>): void {
    let matches: boolean;
    try {
      const compiled = this.compiled(query);
      const snapshot = this.readForPoll(collection, id);
      matches = snapshot.type != null && compiled.test(toMongoDoc(snapshot));
    } catch (err) {
      process.nextTick(callback, err as Error);
      return;
    }
    process.nextTick(callback, null, matches);
  }

  canPollDoc(query: unknown): boolean {
    return canPollDoc(query);
  }

  private compiled(query: unknown): CompiledQuery {
    if (typeof query !== 'object' || query === null) return compileQuery(query);
    let compiled = this.compiledByQuery.get(query);
    if (!compiled) {
      compiled = compileQuery(query);
      this.compiledByQuery.set(query, compiled);
    }
    return compiled;
  }

  /**
   * After an op, every subscribed query of the collection that can poll by document asks
   * about the same document: it is read and parsed once per version, not once per query.
   */
  private readForPoll(collection: string, id: string): QuerySnapshot {
    const key = docKey(collection, id);
    const v = this.source.readVersion(collection, id);
    const cached = this.pollCache.get(key);
    if (cached && cached.v === v) return cached.snapshot;
    const snapshot = this.source.readOne(collection, id);
    this.pollCache.delete(key);
    this.pollCache.set(key, { v, snapshot });
    if (this.pollCache.size > POLL_CACHE_SIZE) this.pollCache.delete(this.pollCache.keys().next().value as string);
    return snapshot;
  }
}
