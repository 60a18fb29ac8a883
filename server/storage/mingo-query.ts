/**
 * The one query evaluator shared by the SQLite and memory adapters.
 *
 * Query language: sharedb-mongo's, so a client query works the same whichever store is
 * configured. A query is a Mongo filter over the document's data, plus `$`-keys that
 * sharedb-mongo maps to cursor/collection calls:
 *   - `$sort` (or the deprecated `$orderby`): `{field: 1 | -1, ...}`, applied in key order
 *   - `$skip`, `$limit`: non-negative integers, applied after the sort
 *   - `$count`: results become `[]` and the count (after skip/limit) goes in `extra`
 *   - `$distinct: {field}`: results become `[]`, the distinct values go in `extra`
 *   - hints that only tune a Mongo cursor (`$comment`, `$hint`, `$maxTimeMS`, ...) are
 *     accepted and ignored, so queries written for Mongo do not break here.
 * Refused: `$aggregate`, `$mapReduce`, `$where` and other script or Mongo-internal keys
 * (sharedb-mongo also disables the first three by default: clients send these queries).
 *
 * Snapshots are queried in sharedb-mongo's stored shape: data fields at the top level
 * (non-object data under `_data`), plus `_id`, `_v`, `_type` and `_m` (metadata), so
 * `{_id: {$in: [...]}}` or `{'_m.mtime': {$gt: t}}` mean what they mean on Mongo.
 * Deleted documents (type null) never match, as with ShareDB's MemoryDB.
 */
import { Query } from 'mingo';

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

/** Error with a stable code; ShareDB sends `{code, message}` of it to the client. */
export class QueryError extends Error {
  readonly code = 'TANDEM_INVALID_QUERY';
}

// Mongo cursor tuning that has no meaning for an in-process evaluation.
const IGNORED_KEYS = new Set([
  '$comment', '$hint', '$maxTimeMS', '$batchSize', '$readPref', '$readConcern',
  '$noCursorTimeout', '$snapshot', '$maxScan', '$showRecordId', '$showDiskLoc',
]);
const REFUSED_KEYS = new Set([
  '$aggregate', '$mapReduce', '$explain', '$map', '$max', '$min', '$returnKey', '$query',
]);
// Keys after which a per-document check cannot tell whether the result set changed.
const NOT_POLLABLE_BY_DOC = ['$sort', '$orderby', '$skip', '$limit', '$count', '$distinct'];

interface ParsedQuery {
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
  for (const [field, dir] of Object.entries(value)) {
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
    else if (key === '$limit') parsed.limit = nonNegativeInt(key, value);
    else if (key === '$count') parsed.count = true;
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
function toMongoDoc(snapshot: QuerySnapshot): Record<string, unknown> {
  const body = isPlainObject(snapshot.data) ? { ...snapshot.data } : { _data: snapshot.data };
  return { ...body, _id: snapshot.id, _type: snapshot.type, _v: snapshot.v, _m: snapshot.m };
}

function compileFilter(filter: Record<string, unknown>): Query {
  try {
    // scriptEnabled: false — queries come from clients; never evaluate their code.
    return new Query(filter, { scriptEnabled: false });
  } catch (err) {
    throw new QueryError((err as Error).message);
  }
}

function getPath(doc: unknown, path: string): unknown[] {
  // Mongo's distinct descends through arrays and flattens array values.
  let values: unknown[] = [doc];
  for (const part of path.split('.')) {
    const next: unknown[] = [];
    for (const v of values) {
      if (Array.isArray(v)) {
        for (const item of v) if (isPlainObject(item) && part in item) next.push(item[part]);
      } else if (isPlainObject(v) && part in v) next.push(v[part]);
    }
    values = next;
  }
  return values.flatMap((v) => (Array.isArray(v) ? v : [v]));
}

function distinctValues(docs: Record<string, unknown>[], field: string): unknown[] {
  const seen = new Map<string, unknown>();
  for (const doc of docs) {
    for (const value of getPath(doc, field)) {
      const key = JSON.stringify(value);
      if (!seen.has(key)) seen.set(key, value);
    }
  }
  return [...seen.values()];
}

/**
 * Runs `query` over `snapshots` (one collection's, deleted ones may be included).
 * Throws QueryError for malformed queries; adapters pass it to the callback.
 */
export function runQuery<T extends QuerySnapshot>(snapshots: T[], query: unknown): QueryResult<T> {
  const parsed = parseQuery(query);
  const mingo = compileFilter(parsed.filter);
  const byId = new Map<string, T>();
  const docs: Record<string, unknown>[] = [];
  for (const snapshot of snapshots) {
    if (snapshot.type == null) continue;
    byId.set(snapshot.id, snapshot);
    docs.push(toMongoDoc(snapshot));
  }
  let matched: Record<string, unknown>[];
  try {
    let cursor = mingo.find<Record<string, unknown>>(docs);
    if (parsed.sort) cursor = cursor.sort(parsed.sort);
    if (parsed.skip !== undefined) cursor = cursor.skip(parsed.skip);
    if (parsed.limit !== undefined) cursor = cursor.limit(parsed.limit);
    matched = cursor.all();
  } catch (err) {
    throw new QueryError((err as Error).message);
  }
  if (parsed.count) return { snapshots: [], extra: matched.length };
  if (parsed.distinct !== undefined) {
    return { snapshots: [], extra: distinctValues(matched, parsed.distinct) };
  }
  return { snapshots: matched.map((doc) => byId.get(doc._id as string) as T) };
}

/** Whether one (possibly deleted) snapshot matches the filter part of `query`. */
export function matchesQuery(snapshot: QuerySnapshot, query: unknown): boolean {
  if (snapshot.type == null) return false;
  const mingo = compileFilter(parseQuery(query).filter);
  try {
    return mingo.test(toMongoDoc(snapshot));
  } catch (err) {
    throw new QueryError((err as Error).message);
  }
}

/** ShareDB's canPollDoc: may a changed doc be re-checked alone instead of re-running the query? */
export function canPollDoc(query: unknown): boolean {
  if (!isPlainObject(query)) return false;
  return !NOT_POLLABLE_BY_DOC.some((key) => Object.prototype.hasOwnProperty.call(query, key));
}

/**
 * Maps the generic query of ShareDB's test suites (`{query, sort: [[field, dir], ...]}`)
 * to ours. Used by the contract tests, and documents the correspondence.
 */
export function fromGenericQuery(generic: {
  query: Record<string, unknown>;
  sort?: Array<[string, 1 | -1]>;
}): DbQuery {
  const out: DbQuery = { ...generic.query };
  if (generic.sort && generic.sort.length > 0) {
    out.$sort = Object.fromEntries(generic.sort);
  }
  return out;
}
