/**
 * Client queries (the Mongo-style language of mingo-query.ts, validated there first) as SQL
 * over tandem_snapshots, so PostgreSQL finds, sorts and pages the documents: nothing is
 * scanned in the Node process. Every value, field path and count travels as a bind
 * parameter; the SQL text holds only what this file writes.
 *
 * Fields are read in sharedb-mongo's document shape, as on the other stores: `_id`, `_v`,
 * `_type`, `_m.<path>` (metadata), `_data` (non-object data), anything else a dotted path
 * into the data (`a.b.0.c`; a numeric part indexes an array).
 *
 * Translated, with MongoDB's meaning:
 *   - equality (`{f: v}`, `$eq`): also true when f is an array holding v; `{f: null}` also
 *     matches a missing f; object and array values compare whole (key order aside: jsonb
 *     does not keep it);
 *   - `$in`, `$ne`, `$nin` (`$ne`/`$nin` match documents without the field, as MongoDB);
 *   - `$gt`, `$gte`, `$lt`, `$lte` on numbers, strings (by code point) and booleans: only
 *     values of the same type compare, and an array field matches when one of its items does
 *     (`$gte`/`$lte` null: an explicit null only, as mingo on the other stores);
 *   - `$exists`, `$not`, `$and`, `$or`, `$nor`;
 *   - `$sort` (MongoDB's type order: null/missing, numbers, strings, objects, arrays,
 *     booleans; ties by id), `$skip`, `$limit`, `$count`.
 * Refused with TANDEM_INVALID_QUERY (never evaluated in the process instead): `$regex`,
 * `$elemMatch`, `$all`, `$size`, `$type`, `$mod`, the bit operators, `$expr`, `$distinct`,
 * and comparisons with objects or arrays. The other stores' refusals (`$where`, unknown
 * operators…) come first, from compileQuery.
 * Not like MongoDB: a path does not descend into an array in its middle (`{'items.name': x}`
 * does not look at each item; `items.0.name` does), and sorting by an array field sorts by
 * the whole array, not by its smallest or largest item. Not like mingo (SQLite, memory) but
 * like MongoDB: equality looks one level into arrays (`{tags: 'x'}` does not match
 * `[['x']]`).
 *
 * Indexes an operator can add (the queries below are written so PostgreSQL can use them):
 *   - `CREATE INDEX ON tandem_snapshots USING GIN (data jsonb_path_ops)`: equality and `$in`
 *     on any data field (`{title: 'x'}` becomes `data @> '{"title":"x"}' OR data @>
 *     '{"title":["x"]}'`), in every collection;
 *   - `CREATE INDEX ON tandem_snapshots USING GIN (metadata jsonb_path_ops)`: the same for `_m.…`;
 *   - the primary key (collection, id) serves `_id` filters and the default order.
 * Range filters and sorts are computed per row of the collection; for client queries the
 * rows are bounded by MAX_QUERY_SCAN (see postgres-query-run.ts).
 */
import { QueryError } from '../limits/query-errors.js';
import type { ParsedQuery } from './mingo-query.js';

/** One statement and its bind parameters. */
export interface SqlQuery {
  text: string;
  values: unknown[];
}

/** Collects bind parameters, handing back their placeholders. */
export class SqlParams {
  readonly values: unknown[];
  private readonly paths = new Map<string, string>();

  constructor(initial: unknown[] = []) {
    this.values = [...initial];
  }

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }

  /** A JSON value, sent as text (pg would turn a JS array into a PostgreSQL array). */
  json(value: unknown): string {
    return `${this.add(JSON.stringify(value))}::jsonb`;
  }

  /** A field path as text[], one parameter per distinct path. */
  path(parts: readonly string[]): string {
    const key = JSON.stringify(parts);
    let placeholder = this.paths.get(key);
    if (placeholder === undefined) {
      placeholder = `${this.add([...parts])}::text[]`;
      this.paths.set(key, placeholder);
    }
    return placeholder;
  }
}

type Scalar = string | number | boolean | null;

/** Where a query field lives in a row. */
interface Field {
  /** SQL yielding the jsonb the path starts from. */
  root: string;
  path: string[];
  /** Equality may be written as containment of `root` (GIN-indexable): no array index in the path. */
  containable: boolean;
  /** `_id`: the id column, compared as text. */
  isId: boolean;
}

const isIndex = (part: string) => /^\d+$/.test(part);
const isScalar = (value: unknown): value is Scalar =>
  value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isOperatorKey = (key: string) => key.startsWith('$');

const COLUMN_ROOTS: Record<string, string> = { _id: 'to_jsonb(id)', _v: 'to_jsonb(v)', _type: 'to_jsonb(type)' };
/** Data that is not an object is queried as `_data`, as sharedb-mongo stores it. */
const DATA_AS_OBJECT = "(CASE WHEN jsonb_typeof(data) = 'object' THEN data END)";
const NON_OBJECT_DATA = "(CASE WHEN jsonb_typeof(data) = 'object' THEN data -> '_data' ELSE data END)";

function fieldOf(name: string): Field {
  const parts = name.split('.');
  if (parts.some((part) => part === '')) throw new QueryError(`field "${name}" has an empty part`);
  const [head, ...rest] = parts as [string, ...string[]];
  // Own keys only: "__proto__" or "constructor" are data fields like any other.
  const columnRoot = Object.hasOwn(COLUMN_ROOTS, head) ? COLUMN_ROOTS[head] : undefined;
  if (columnRoot !== undefined) return { root: columnRoot, path: rest, containable: false, isId: head === '_id' && rest.length === 0 };
  if (head === '_m') return { root: 'metadata', path: rest, containable: rest.length > 0 && !rest.some(isIndex), isId: false };
  if (head === '_data') return { root: NON_OBJECT_DATA, path: rest, containable: false, isId: false };
  const containable = !parts.some(isIndex);
  return { root: containable ? 'data' : DATA_AS_OBJECT, path: parts, containable, isId: false };
}

/** `{a: {b: value}}` for the path a.b: what containment (`@>`) looks for. */
function nest(path: readonly string[], value: unknown): unknown {
  // Computed keys define own properties, "__proto__" included.
  return path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value);
}

const COMPARISONS: Record<string, string> = {
  // Fixed jsonpath texts: lax mode tries each item of an array, and compares only same types.
  $gt: "'lax $ ? (@ > $v)'",
  $gte: "'lax $ ? (@ >= $v)'",
  $lt: "'lax $ ? (@ < $v)'",
  $lte: "'lax $ ? (@ <= $v)'",
};

const not = (sql: string) => `NOT COALESCE(${sql}, FALSE)`;
const anyOf = (parts: string[]) => (parts.length === 0 ? 'FALSE' : parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`);
const allOf = (parts: string[]) => (parts.length === 0 ? 'TRUE' : parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`);

class FilterTranslator {
  constructor(private readonly p: SqlParams) {}

  /** The jsonb value at the field (SQL NULL when missing). */
  private value(field: Field): string {
    return field.path.length === 0 ? field.root : `(${field.root} #> ${this.p.path(field.path)})`;
  }

  filter(filter: Record<string, unknown>): string {
    const parts: string[] = [];
    for (const [key, condition] of Object.entries(filter)) {
      if (key === '$and' || key === '$or' || key === '$nor') {
        const items = (condition as unknown[]).map((item) => this.filter(item as Record<string, unknown>));
        if (key === '$and') parts.push(allOf(items));
        else if (key === '$or') parts.push(anyOf(items));
        else parts.push(not(anyOf(items)));
      } else if (isOperatorKey(key)) {
        throw unsupported(key);
      } else {
        parts.push(this.condition(fieldOf(key), condition));
      }
    }
    return allOf(parts);
  }

  private condition(field: Field, condition: unknown): string {
    if (isPlainObject(condition) && Object.keys(condition).some(isOperatorKey)) return this.operators(field, condition);
    return this.equals(field, condition);
  }

  private operators(field: Field, ops: Record<string, unknown>): string {
    const parts: string[] = [];
    for (const [op, arg] of Object.entries(ops)) {
      if (op === '$eq') parts.push(this.equals(field, arg));
      else if (op === '$ne') parts.push(not(this.equals(field, arg)));
      else if (op === '$in') parts.push(this.in(field, arg as unknown[]));
      else if (op === '$nin') parts.push(not(this.in(field, arg as unknown[])));
      else if (Object.hasOwn(COMPARISONS, op)) parts.push(this.compare(field, op, arg));
      else if (op === '$exists') parts.push(`${this.value(field)} IS ${arg ? 'NOT NULL' : 'NULL'}`);
      else if (op === '$not') parts.push(not(this.operators(field, arg as Record<string, unknown>)));
      else throw unsupported(op);
    }
    return allOf(parts);
  }

  /** `{field: value}`; for null, `missingMatches` (the default, as MongoDB) also takes documents without the field. */
  private equals(field: Field, value: unknown, missingMatches = true): string {
    if (field.isId) return typeof value === 'string' ? `id = ${this.p.add(value)}` : 'FALSE';
    if (!isScalar(value)) {
      // Whole-value equality, or an item of an array field equal to it.
      const x = this.value(field);
      const v = this.p.json(value);
      return `(${x} = ${v} OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(${x}) = 'array' THEN ${x} END) AS e(item) WHERE e.item = ${v}))`;
    }
    const parts: string[] = [];
    if (value === null && missingMatches) parts.push(`${this.value(field)} IS NULL`);
    if (field.containable) {
      parts.push(`${field.root} @> ${this.p.json(nest(field.path, value))}`, `${field.root} @> ${this.p.json(nest(field.path, [value]))}`);
    } else {
      const x = this.value(field);
      const v = this.p.json(value);
      parts.push(`${x} = ${v}`, `(jsonb_typeof(${x}) = 'array' AND ${x} @> jsonb_build_array(${v}))`);
    }
    return anyOf(parts);
  }

  private in(field: Field, values: unknown[]): string {
    if (field.isId) {
      const ids = values.filter((v): v is string => typeof v === 'string');
      return ids.length === 0 ? 'FALSE' : `id = ANY(${this.p.add(ids)}::text[])`;
    }
    const scalars = values.filter(isScalar);
    const parts: string[] = [];
    if (scalars.includes(null)) parts.push(`${this.value(field)} IS NULL`);
    if (scalars.length > 0 && field.containable) {
      const docs = scalars.flatMap((v) => [JSON.stringify(nest(field.path, v)), JSON.stringify(nest(field.path, [v]))]);
      parts.push(`${field.root} @> ANY(${this.p.add(docs)}::jsonb[])`);
    } else if (scalars.length > 0) {
      const x = this.value(field);
      parts.push(
        `${x} = ANY(${this.p.add(scalars.map((v) => JSON.stringify(v)))}::jsonb[])`,
        `(jsonb_typeof(${x}) = 'array' AND ${x} @> ANY(${this.p.add(scalars.map((v) => JSON.stringify([v])))}::jsonb[]))`,
      );
    }
    for (const value of values) if (!isScalar(value)) parts.push(this.equals(field, value));
    return anyOf(parts);
  }

  private compare(field: Field, op: string, value: unknown): string {
    // Only null is >= or <= null (a missing field is not, as in mingo); nothing is > or < it.
    if (value === null) return op === '$gte' || op === '$lte' ? this.equals(field, null, false) : 'FALSE';
    if (!isScalar(value))
      throw new QueryError(`${op} compares with a number, string or boolean in the PostgreSQL store, not an object or array`);
    return `jsonb_path_exists(${this.value(field)}, ${COMPARISONS[op]}, ${this.p.json({ v: value })}, TRUE)`;
  }

  /** ORDER BY keys: MongoDB's type order first, then the value within its type. */
  orderBy(sort: Record<string, 1 | -1> | undefined): string {
    const keys: string[] = [];
    let byId = false;
    for (const [name, direction] of Object.entries(sort ?? {})) {
      const dir = direction === 1 ? 'ASC' : 'DESC';
      const field = fieldOf(name);
      if (field.isId) {
        keys.push(`id ${dir}`);
        byId = true;
        break; // ids are unique: later keys never apply
      }
      const x = this.value(field);
      const type = `jsonb_typeof(${x})`;
      keys.push(
        `CASE ${type} WHEN 'number' THEN 1 WHEN 'string' THEN 2 WHEN 'object' THEN 3 WHEN 'array' THEN 4 WHEN 'boolean' THEN 5 ELSE 0 END ${dir}`,
        `CASE WHEN ${type} = 'number' THEN (${x})::numeric END ${dir}`,
        `(CASE WHEN ${type} = 'string' THEN ${x} #>> '{}' END) COLLATE "C" ${dir}`,
        `CASE WHEN ${type} IN ('object', 'array', 'boolean') THEN ${x} END ${dir}`,
      );
    }
    if (!byId) keys.push('id'); // ties, and no $sort: id order (bytes, the "C" collation), as on SQLite
    return keys.join(', ');
  }
}

function unsupported(op: string): QueryError {
  return new QueryError(`${op} is not supported by the PostgreSQL store`);
}

/** The filter as a SQL condition over a tandem_snapshots row ('TRUE' for `{}`). Throws QueryError. */
export function translateFilter(filter: Record<string, unknown>, params: SqlParams): string {
  return new FilterTranslator(params).filter(filter);
}

/** ORDER BY for `$sort` (or only by id). Throws QueryError. */
export function translateSort(sort: Record<string, 1 | -1> | undefined, params: SqlParams): string {
  return new FilterTranslator(params).orderBy(sort);
}

export interface SelectOptions {
  /** What comes back: snapshot rows, or ids only. (`$count` queries return one row `{n}`.) */
  output: 'snapshots' | 'ids';
  /** Read the metadata column too. */
  withMeta?: boolean;
  /** At most this many rows (below `$limit`): the result cap plus one, to tell "over" from "at". */
  maxRows?: number;
  /**
   * Read nothing when the collection holds more live documents than this (MAX_QUERY_SCAN):
   * the statement then returns no rows (`{n: 0}` for `$count`), and only then does the caller
   * need countLiveSql to tell that refusal from an empty result.
   */
  maxScan?: number;
}

function page(parsed: ParsedQuery, p: SqlParams, maxRows = Infinity): string {
  let sql = '';
  if (parsed.skip) sql += ` OFFSET ${p.add(parsed.skip)}`;
  const limit = Math.min(parsed.limit ?? Infinity, maxRows);
  if (Number.isFinite(limit)) sql += ` LIMIT ${p.add(limit)}`;
  return sql;
}

/**
 * The statement answering a parsed query over `collection`: live documents only, sorted and
 * paged in SQL; with `$count`, one row `{n}`. Throws QueryError for what it cannot translate.
 */
export function selectSql(table: string, collection: string, parsed: ParsedQuery, opts: SelectOptions): SqlQuery {
  if (parsed.distinct !== undefined) throw unsupported('$distinct');
  const p = new SqlParams([collection]);
  const translator = new FilterTranslator(p);
  const conditions = ['collection = $1', 'type IS NOT NULL'];
  const where = translator.filter(parsed.filter);
  if (where !== 'TRUE') conditions.push(where);
  if (opts.maxScan !== undefined && Number.isFinite(opts.maxScan)) {
    // Uncorrelated, so PostgreSQL counts once, before reading any document (a one-time filter).
    conditions.push(
      `(SELECT count(*) FROM (SELECT 1 FROM ${table} WHERE collection = $1 AND type IS NOT NULL LIMIT ${p.add(opts.maxScan + 1)}) AS live) <= ${p.add(opts.maxScan)}`,
    );
  }
  const from = `FROM ${table} WHERE ${conditions.join(' AND ')}`;
  if (parsed.count) {
    return { text: `SELECT count(*)::integer AS n FROM (SELECT 1 ${from}${page(parsed, p)}) AS matched`, values: p.values };
  }
  const columns = opts.output === 'ids' ? 'id' : `id, v, type, data${opts.withMeta ? ', metadata' : ''}`;
  const order = translator.orderBy(parsed.sort);
  return { text: `SELECT ${columns} ${from} ORDER BY ${order}${page(parsed, p, opts.maxRows)}`, values: p.values };
}

/** Whether one document is live and matches the filter (ShareDB's queryPollDoc). */
export function pollDocSql(table: string, collection: string, id: string, parsed: ParsedQuery): SqlQuery {
  const p = new SqlParams([collection, id]);
  const where = translateFilter(parsed.filter, p);
  const match = where === 'TRUE' ? '' : ` AND ${where}`;
  return {
    text: `SELECT EXISTS (SELECT 1 FROM ${table} WHERE collection = $1 AND id = $2 AND type IS NOT NULL${match}) AS matches`,
    values: p.values,
  };
}

/** Live documents of the collection, counted no further than `atMost` (cheap at any size). */
export function countLiveSql(table: string, collection: string, atMost: number): SqlQuery {
  return {
    text: `SELECT count(*)::integer AS n FROM (SELECT 1 FROM ${table} WHERE collection = $1 AND type IS NOT NULL LIMIT $2) AS live`,
    values: [collection, atMost],
  };
}
