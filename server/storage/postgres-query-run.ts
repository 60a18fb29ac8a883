/**
 * How PostgresDB answers ShareDB's query calls within the query limits (README "Limits"):
 *
 *   1. compile and translate (mingo-query.ts, postgres-query.ts): a query is refused with
 *      TANDEM_INVALID_QUERY before anything is read;
 *   2. MAX_QUERY_SCAN, as on the other stores: a query that does not name its documents by
 *      `_id` is refused (TANDEM_QUERY_TOO_LARGE) when the collection holds more live
 *      documents, found by counting no further than the limit — inside the query's own
 *      statement, which then reads nothing. Indexes would let PostgreSQL answer some queries
 *      over larger collections, but the limit is what clients are promised; operators who
 *      index may raise it;
 *   3. MAX_QUERY_RESULTS: pushed into the statement as LIMIT (the cap plus one), refused
 *      when that extra row comes back;
 *   4. a client query is cancelled by PostgreSQL after QUERY_TIMEOUT_MS and refused with
 *      TANDEM_QUERY_TOO_LARGE: whatever makes it expensive, its cost stays bounded, like the
 *      in-process stores' work budget.
 *
 * One statement per query (a second only when it found nothing, to tell a refused scan
 * from an empty result): a query answers in one round trip, as fast as on the other stores
 * relative to commits issued after it.
 *
 * The application's own connections (server-side, marked by the 'query' middleware) are
 * not capped.
 */
import { DatabaseError, type QueryResultRow } from 'pg';
import { QueryTooLargeError } from '../limits/query-errors.js';
import { capsFor, DEFAULT_QUERY_LIMITS, type QueryLimits } from '../limits/query-options.js';
import { compileQuery, type QuerySnapshot } from './mingo-query.js';
import type { PostgresStore } from './postgres-connection.js';
import { countLiveSql, pollDocSql, selectSql } from './postgres-query.js';

/** Longest a client query may run in PostgreSQL, ms (the in-process stores' budget too). */
export const QUERY_TIMEOUT_MS = 5000;
const QUERY_CANCELED = '57014';

/** A tandem_snapshots row as queries read it. */
export interface SnapshotRow {
  id: string;
  v: number;
  type: string | null;
  data: unknown;
  metadata?: Record<string, unknown> | null;
}

/** A deleted or missing document comes back as MemoryDB returns it: no data, no metadata. */
export function toSnapshot(id: string, row: Omit<SnapshotRow, 'id'> | undefined, withMeta: boolean): QuerySnapshot {
  if (!row) return { id, v: 0, type: null, data: undefined, m: null };
  if (row.type === null) return { id, v: row.v, type: null, data: undefined, m: null };
  return { id, v: row.v, type: row.type, data: row.data ?? undefined, m: withMeta ? (row.metadata ?? null) : null };
}

interface Answer<R> {
  rows: R[];
  extra?: unknown;
}

export class PostgresQueries {
  private limits: QueryLimits = DEFAULT_QUERY_LIMITS;

  constructor(private readonly store: PostgresStore) {}

  setLimits(limits: QueryLimits): void {
    this.limits = limits;
  }

  /** ShareDB's `db.query`: snapshots (metadata only with `options.metadata`) and, for `$count`, extra. */
  async query(collection: string, query: unknown, options: unknown): Promise<{ snapshots: QuerySnapshot[]; extra?: unknown }> {
    const withMeta = Boolean((options as { metadata?: unknown } | null)?.metadata);
    const answer = await this.run<SnapshotRow>(collection, query, options, 'snapshots', withMeta);
    return { snapshots: answer.rows.map((row) => toSnapshot(row.id, row, withMeta)), extra: answer.extra };
  }

  /** ShareDB's `db.queryPoll`: the matching ids, in result order, and extra. */
  async queryPoll(collection: string, query: unknown, options: unknown): Promise<{ ids: string[]; extra?: unknown }> {
    const answer = await this.run<{ id: string }>(collection, query, options, 'ids', false);
    return { ids: answer.rows.map((row) => row.id), extra: answer.extra };
  }

  /** ShareDB's `db.queryPollDoc`: does this one live document match the filter? */
  async pollDoc(collection: string, id: string, query: unknown): Promise<boolean> {
    const sql = pollDocSql(this.store.tables.snapshots, collection, id, compileQuery(query).parsed);
    const result = await this.store.query<{ matches: boolean }>(sql.text, sql.values);
    return result.rows[0]!.matches;
  }

  private async run<R extends QueryResultRow>(
    collection: string,
    query: unknown,
    options: unknown,
    output: 'snapshots' | 'ids',
    withMeta: boolean,
  ): Promise<Answer<R>> {
    const compiled = compileQuery(query);
    const { parsed } = compiled;
    const caps = capsFor(options, this.limits);
    const table = this.store.tables.snapshots;
    // Named documents are read by primary key, whatever the collection's size.
    const maxScan = compiled.ids === null && Number.isFinite(caps.maxScan) ? caps.maxScan : undefined;
    const maxRows = Number.isFinite(caps.maxResults) ? caps.maxResults + 1 : undefined;
    const sql = selectSql(table, collection, parsed, { output, withMeta, maxRows, maxScan });
    const capped = Number.isFinite(caps.maxScan) || Number.isFinite(caps.maxResults);
    const timeoutMs = this.store.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
    let rows: QueryResultRow[];
    try {
      rows = capped
        ? (await this.store.queryWithTimeout(sql.text, sql.values, timeoutMs)).rows
        : (await this.store.query(sql.text, sql.values)).rows;
    } catch (err) {
      if (err instanceof DatabaseError && err.code === QUERY_CANCELED) {
        throw new QueryTooLargeError(
          `the query ran longer than ${timeoutMs} ms: narrow it, name its documents by _id, or index the fields it filters on`,
        );
      }
      throw err;
    }
    const found = parsed.count ? (rows[0] as { n: number }).n : rows.length;
    // Nothing found may mean the statement refused to read the collection.
    if (found === 0 && maxScan !== undefined) await this.checkScan(collection, maxScan);
    if (parsed.count) return { rows: [], extra: found };
    if (rows.length > caps.maxResults) {
      throw new QueryTooLargeError(`the query matches documents more than ${caps.maxResults} (MAX_QUERY_RESULTS): add $limit or narrow it`);
    }
    return { rows: rows as R[] };
  }

  private async checkScan(collection: string, maxScan: number): Promise<void> {
    const count = countLiveSql(this.store.tables.snapshots, collection, maxScan + 1);
    const result = await this.store.query<{ n: number }>(count.text, count.values);
    if (result.rows[0]!.n > maxScan) {
      throw new QueryTooLargeError(
        `the collection holds more than ${maxScan} documents (MAX_QUERY_SCAN): a query over it must name its documents by _id`,
      );
    }
  }
}
