/**
 * One evaluation of a compiled query (mingo-query.ts), fed documents a page at a time by
 * the scanner and finished once they have all been added — or earlier, when the rest
 * cannot change the answer (`done`).
 *
 * What it holds is bounded by what the query can return, not by what it reads:
 *   - unsorted: the first `$skip + $limit` matches, and the scan stops there;
 *   - sorted: the best `$skip + $limit` so far (pruned as it goes);
 *   - `$count`: a number; `$distinct` without paging: the distinct values.
 * MAX_QUERY_RESULTS is checked as matches come in, so a query that would return too many
 * documents stops early (TANDEM_QUERY_TOO_LARGE) instead of after the whole scan. Sorting
 * follows mingo's `$sort` (its type order, stable for equal keys).
 */
import { compare, resolve } from 'mingo/util';
import {
  asQueryError,
  toMongoDoc,
  type CompiledQuery,
  type MongoDoc,
  type QueryResult,
  type QuerySnapshot,
} from '../storage/mingo-query.js';
import { QueryTooLargeError } from './query-errors.js';

interface Kept<T> {
  /** The sort fields' values, in `$sort` order (null without $sort). */
  key: unknown[] | null;
  /** Scan order: ties keep it, as mingo's sort is stable. */
  index: number;
  snapshot: T;
  doc: MongoDoc;
}

function getPath(doc: unknown, path: string): unknown[] {
  // Mongo's distinct descends through arrays and flattens array values.
  let values: unknown[] = [doc];
  for (const part of path.split('.')) {
    const next: unknown[] = [];
    for (const v of values) {
      if (Array.isArray(v)) {
        for (const item of v)
          if (typeof item === 'object' && item !== null && part in item) next.push((item as Record<string, unknown>)[part]);
      } else if (typeof v === 'object' && v !== null && part in v) next.push((v as Record<string, unknown>)[part]);
    }
    values = next;
  }
  return values.flatMap((v) => (Array.isArray(v) ? v : [v]));
}

export class QueryRun<T extends QuerySnapshot> {
  private matched = 0;
  private kept: Array<Kept<T>> = [];
  /** Matches that can be returned at most: `$skip + $limit`. */
  private readonly window: number;
  private readonly sortKeys: Array<[string, 1 | -1]> | null;
  /** `$distinct` over every match (no paging): values as they come. */
  private readonly distinct: Map<string, unknown> | null;

  constructor(
    private readonly compiled: CompiledQuery,
    private readonly maxResults: number,
  ) {
    const { sort, skip = 0, limit = Infinity, distinct } = compiled.parsed;
    this.window = skip + limit;
    this.sortKeys = sort && Object.keys(sort).length > 0 ? Object.entries(sort) : null;
    const paged = this.sortKeys !== null || compiled.parsed.skip !== undefined || compiled.parsed.limit !== undefined;
    this.distinct = distinct !== undefined && !paged ? new Map() : null;
  }

  /** Nothing more can change the result: the scan may stop. */
  get done(): boolean {
    return this.sortKeys === null && this.distinct === null && this.matched >= this.window;
  }

  private tooMany(what: string): QueryTooLargeError {
    return new QueryTooLargeError(`the query ${what} more than ${this.maxResults} (MAX_QUERY_RESULTS): add $limit or narrow it`);
  }

  add(snapshot: T): void {
    if (snapshot.type == null || this.done) return;
    const doc = toMongoDoc(snapshot);
    if (!this.compiled.test(doc)) return;
    this.matched++;
    const { skip = 0, limit = Infinity, count, distinct } = this.compiled.parsed;
    if (count) return;
    if (this.distinct) {
      for (const value of getPath(doc, distinct!)) {
        const key = JSON.stringify(value);
        if (!this.distinct.has(key)) this.distinct.set(key, value);
      }
      if (this.distinct.size > this.maxResults) throw this.tooMany('finds $distinct values');
      return;
    }
    if (distinct === undefined && Math.min(this.matched - skip, limit) > this.maxResults) throw this.tooMany('matches documents');
    // Missing sorts as null (MongoDB; mingo groups the two).
    const key = this.sortKeys ? this.sortKeys.map(([field]) => resolve(doc, field) ?? null) : null;
    this.kept.push({ key, index: this.matched, snapshot, doc });
    // Sorted: keep the best `window`, pruning once twice that many are held.
    if (this.sortKeys && this.kept.length >= 2 * this.window + 64) this.kept = this.sorted().slice(0, this.window);
  }

  private sorted(): Array<Kept<T>> {
    const keys = this.sortKeys!;
    try {
      return this.kept.sort((a, b) => {
        for (let i = 0; i < keys.length; i++) {
          const order = compare(a.key![i], b.key![i]);
          if (order !== 0) return order * keys[i]![1];
        }
        return a.index - b.index;
      });
    } catch (err) {
      throw asQueryError(err);
    }
  }

  finish(): QueryResult<T> {
    const { skip = 0, limit = Infinity, count, distinct } = this.compiled.parsed;
    if (count) return { snapshots: [], extra: Math.max(0, Math.min(this.matched - skip, limit)) };
    if (this.distinct) return { snapshots: [], extra: [...this.distinct.values()] };
    const page = (this.sortKeys ? this.sorted() : this.kept).slice(skip, this.window);
    if (distinct !== undefined) {
      const values = new Map<string, unknown>();
      for (const { doc } of page) {
        for (const value of getPath(doc, distinct)) {
          const key = JSON.stringify(value);
          if (!values.has(key)) values.set(key, value);
        }
      }
      if (values.size > this.maxResults) throw this.tooMany('finds $distinct values');
      return { snapshots: [], extra: [...values.values()] };
    }
    return { snapshots: page.map((k) => k.snapshot) };
  }
}
