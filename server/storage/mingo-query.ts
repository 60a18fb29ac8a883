/**
 * The query language of the SQLite and memory adapters: a query is parsed, validated and
 * compiled here before anything is read (compileQuery), then evaluated within the limits
 * (MAX_QUERY_SCAN, MAX_QUERY_RESULTS, in slices) by server/limits/query-executor.ts and
 * query-run.ts.
 *
 * Query language: sharedb-mongo's, so a client query works the same whichever store is
 * configured. A query is a Mongo filter over the document's data, plus `$`-keys that
 * sharedb-mongo maps to cursor/collection calls:
 *   - `$sort` (or the deprecated `$orderby`): `{field: 1 | -1, ...}`, applied in key order
 *   - `$skip`, `$limit`: non-negative integers, applied after the sort (`$limit: 0`: none)
 *   - `$count`: results become `[]` and the count (after skip/limit) goes in `extra`
 *   - `$distinct: {field}`: results become `[]`, the distinct values go in `extra`
 *   - hints that only tune a Mongo cursor (`$comment`, `$hint`, `$maxTimeMS`, ...) are
 *     accepted and ignored, so queries written for Mongo do not break here.
 * Refused: `$aggregate`, `$mapReduce`, `$where` and other script or Mongo-internal keys
 * (sharedb-mongo also disables the first three by default: clients send these queries), and
 * in the filter every operator but the plain query operators (server/limits/query-shape.ts:
 * no `$expr`, `$jsonSchema`…); regular expressions must be safe and run on RE2
 * (server/limits/query-regex.ts).
 *
 * Snapshots are queried in sharedb-mongo's stored shape: data fields at the top level
 * (non-object data under `_data`), plus `_id`, `_v`, `_type` and `_m` (metadata), so
 * `{_id: {$in: [...]}}` or `{'_m.mtime': {$gt: t}}` mean what they mean on Mongo.
 * Deleted documents (type null) never match, as with ShareDB's MemoryDB.
 */
import { Query } from 'mingo';
import { Context } from 'mingo/core';
import { TandemError } from '../../client/protocol.js';
import { QueryError, QueryTooLargeError } from '../limits/query-errors.js';
import { LINEAR_REGEX_OPERATOR, linearRegex } from '../limits/query-regex.js';
import { prepareFilter } from '../limits/query-shape.js';

export { QueryError, QueryTooLargeError };

/** The snapshot shape both adapters hand in (ShareDB's Snapshot). */
export interface QuerySnapshot {
  id: string;
  v: number;
  type: string | null;
  data?: unknown;
  m: Record<string, unknown> | null;
}

export type DbQuery = Record<string, unknown>;

export interface QueryResult<T> {
  snapshots: T[];
  extra?: unknown;
}

/** A stored document in sharedb-mongo's shape, as query field names see it. */
export type MongoDoc = Record<string, unknown>;

// Mongo cursor tuning that has no meaning for an in-process evaluation.
const IGNORED_KEYS = new Set([
  '$comment',
  '$hint',
  '$maxTimeMS',
  '$batchSize',
  '$readPref',
  '$readConcern',
  '$noCursorTimeout',
  '$snapshot',
  '$maxScan',
  '$showRecordId',
  '$showDiskLoc',
]);
const REFUSED_KEYS = new Set(['$aggregate', '$mapReduce', '$explain', '$map', '$max', '$min', '$returnKey', '$query']);
// Keys after which a per-document check cannot tell whether the result set changed.
const NOT_POLLABLE_BY_DOC = ['$sort', '$orderby', '$skip', '$limit', '$count', '$distinct'];
/** Fields one `$sort` may name. */
const MAX_SORT_KEYS = 16;

export interface ParsedQuery {
  filter: Record<string, unknown>;
  sort?: Record<string, 1 | -1>;
  skip?: number;
  limit?: number;
  count: boolean;
  distinct?: string;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonNegativeInt(key: string, value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 0) {
    throw new QueryError(`${key} must be a non-negative integer`);
  }
  return value as number;
}

function parseSort(value: unknown): Record<string, 1 | -1> {
  if (!isPlainObject(value)) throw new QueryError('$sort must be an object like {field: 1}');
  const entries = Object.entries(value);
  if (entries.length > MAX_SORT_KEYS) throw new QueryError(`$sort may name at most ${MAX_SORT_KEYS} fields`);
  for (const [field, dir] of entries) {
    if (dir !== 1 && dir !== -1) throw new QueryError(`$sort.${field} must be 1 or -1`);
  }
  return value as Record<string, 1 | -1>;
}

export function parseQuery(query: unknown): ParsedQuery {
  if (!isPlainObject(query)) throw new QueryError('a query must be an object');
  const parsed: ParsedQuery = { filter: {}, count: false };
  for (const [key, value] of Object.entries(query)) {
    if (key === '$sort' || key === '$orderby') parsed.sort = parseSort(value);
    else if (key === '$skip') parsed.skip = nonNegativeInt(key, value);
    else if (key === '$limit') {
      // As MongoDB (and mingo's cursor): a limit of 0 is no limit.
      const limit = nonNegativeInt(key, value);
      if (limit > 0) parsed.limit = limit;
    } else if (key === '$count') parsed.count = true;
    else if (key === '$distinct') {
      const field = isPlainObject(value) ? value.field : undefined;
      if (typeof field !== 'string') throw new QueryError('$distinct must be {field: "name"}');
      parsed.distinct = field;
    } else if (IGNORED_KEYS.has(key)) continue;
    else if (REFUSED_KEYS.has(key)) throw new QueryError(`${key} queries are not supported`);
    else parsed.filter[key] = value;
  }
  if (parsed.count && parsed.distinct !== undefined) {
    throw new QueryError('$count and $distinct cannot be combined');
  }
  return parsed;
}

/** The document shape sharedb-mongo stores, which query field names refer to. */
export function toMongoDoc(snapshot: QuerySnapshot): MongoDoc {
  const body = isPlainObject(snapshot.data) ? { ...snapshot.data } : { _data: snapshot.data };
  return { ...body, _id: snapshot.id, _type: snapshot.type, _v: snapshot.v, _m: snapshot.m };
}

const MINGO_OPTIONS = {
  // Queries come from clients: never evaluate their code, and use only the operators
  // registered here (not whatever another module added to mingo's global context).
  scriptEnabled: false,
  useGlobalContext: false,
  context: Context.init().addQueryOps({ [LINEAR_REGEX_OPERATOR]: linearRegex }),
};

/** mingo errors become QueryError; Tandem's own coded errors (a regex over a too long string) pass. */
export function asQueryError(err: unknown): Error {
  return err instanceof TandemError ? err : new QueryError((err as Error).message);
}

function compileFilter(filter: Record<string, unknown>): Query {
  try {
    return new Query(filter, MINGO_OPTIONS);
  } catch (err) {
    throw asQueryError(err);
  }
}

/** The ids a filter restricts results to at its top level (`_id: x`, `{$eq: x}`, `{$in: [...]}`), or null. */
function idsOf(filter: Record<string, unknown>): string[] | null {
  if (!Object.hasOwn(filter, '_id')) return null;
  const cond = filter._id;
  let values: unknown[];
  if (!isPlainObject(cond)) values = [cond];
  else {
    const keys = Object.keys(cond);
    if (keys.length !== 1) return null;
    if (keys[0] === '$eq') values = [cond.$eq];
    else if (keys[0] === '$in' && Array.isArray(cond.$in)) values = cond.$in;
    else return null;
  }
  // Ids are strings: any other value matches no document.
  return [...new Set(values.filter((v): v is string => typeof v === 'string'))];
}

/** A query checked and compiled once, before any document is read. */
export interface CompiledQuery {
  readonly parsed: ParsedQuery;
  /** Whether the query refers to metadata (`_m`): otherwise the stores need not parse it to run it. */
  readonly readsMetadata: boolean;
  /** When the filter names its documents by `_id`: only these can match (read them, no scan). */
  readonly ids: string[] | null;
  /** Whether one stored document (sharedb-mongo shape) passes the filter. */
  test(doc: MongoDoc): boolean;
}

/**
 * Parses, validates (operators, size, regular expressions: server/limits/query-shape.ts)
 * and compiles `query`. Throws QueryError (TANDEM_INVALID_QUERY); reads nothing.
 */
export function compileQuery(query: unknown): CompiledQuery {
  const parsed = parseQuery(query);
  const filter = prepareFilter(parsed.filter);
  const mingo = compileFilter(filter);
  // `{$sort: …, $limit: …}` alone is common: nothing to test per document.
  const matchesAll = Object.keys(filter).length === 0;
  return {
    parsed,
    // Conservative: "_m" anywhere, even inside a value, counts.
    readsMetadata: JSON.stringify(query).includes('_m'),
    ids: idsOf(parsed.filter),
    test: (doc) => {
      if (matchesAll) return true;
      try {
        return mingo.test(doc);
      } catch (err) {
        throw asQueryError(err);
      }
    },
  };
}

/** ShareDB's canPollDoc: may a changed doc be re-checked alone instead of re-running the query? */
export function canPollDoc(query: unknown): boolean {
  if (!isPlainObject(query)) return false;
  return !NOT_POLLABLE_BY_DOC.some((key) => Object.hasOwn(query, key));
}

/**
 * Maps the generic query of ShareDB's test suites (`{query, sort: [[field, dir], ...]}`)
 * to ours. Used by the contract tests, and documents the correspondence.
 */
export function fromGenericQuery(generic: { query: Record<string, unknown>; sort?: Array<[string, 1 | -1]> }): DbQuery {
  const out: DbQuery = { ...generic.query };
  if (generic.sort && generic.sort.length > 0) {
    out.$sort = Object.fromEntries(generic.sort);
  }
  return out;
}
