/**
 * The filter part of a client query, checked before anything is read: only the Mongo query
 * operators whose cost is proportional to the document they test are accepted, a query holds
 * at most MAX_QUERY_NODES values, nests at most MAX_QUERY_DEPTH levels, and every regular
 * expression passes checkRegex.
 *
 * `$expr` takes only comparison and boolean expressions over fields and literals (`{$expr:
 * {$gt: ['$a', '$b']}}`): the other aggregation operators can build arrays and strings of
 * any size for every document (`{$range: [0, 1e9]}`).
 *
 * Refused with TANDEM_INVALID_QUERY: `$where`, `$function`, `$accumulator` (code),
 * `$jsonSchema`, `$text`, geo operators, any operator not listed here, and `$`-prefixed keys
 * inside values (MongoDB refuses them too).
 *
 * The filter is returned rewritten for mingo: `$regex`/`$options` become
 * LINEAR_REGEX_OPERATOR, so no client pattern ever runs on JavaScript's backtracking engine.
 */
import { checkRegex, LINEAR_REGEX_OPERATOR } from './query-regex.js';
import { QueryError } from './query-errors.js';

/** Values (keys, array items, scalars) one query may hold; bounds the work per document. */
export const MAX_QUERY_NODES = 1000;
/** Nesting of a query's filter. */
export const MAX_QUERY_DEPTH = 32;

const LOGICAL = new Set(['$and', '$or', '$nor']);
const COMPARISON = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte']);
const BITS = new Set(['$bitsAllSet', '$bitsAllClear', '$bitsAnySet', '$bitsAnyClear']);
/** The expression operators mingo's Query registers (mingo-query.ts keeps to them). */
const EXPRESSION_OPERATORS = new Set(['$and', '$or', '$not', '$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$cmp']);
const REFUSED: Record<string, string> = {
  $where: '$where runs code: not allowed in queries',
  $function: '$function runs code: not allowed in queries',
  $accumulator: '$accumulator runs code: not allowed in queries',
  $jsonSchema: '$jsonSchema is not supported',
  $text: '$text search is not supported',
};

export type Filter = Record<string, unknown>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isOperatorKey = (key: string) => key.startsWith('$');

function unknownOperator(key: string): QueryError {
  return new QueryError(REFUSED[key] ?? `unknown or unsupported query operator ${key}`);
}

class FilterWalker {
  private nodes = 0;

  private visit(depth: number): void {
    if (++this.nodes > MAX_QUERY_NODES) throw new QueryError(`a query may hold at most ${MAX_QUERY_NODES} values`);
    if (depth > MAX_QUERY_DEPTH) throw new QueryError(`a query may nest at most ${MAX_QUERY_DEPTH} levels`);
  }

  /** `{field: condition, $and: [...], ...}` */
  filter(value: unknown, depth: number): Filter {
    if (!isPlainObject(value)) throw new QueryError('a query filter must be an object');
    const out: Filter = {};
    for (const [key, condition] of Object.entries(value)) {
      this.visit(depth);
      if (LOGICAL.has(key)) {
        if (!Array.isArray(condition) || condition.length === 0) throw new QueryError(`${key} must be a non-empty array of filters`);
        out[key] = condition.map((item) => this.filter(item, depth + 1));
      } else if (key === '$expr') {
        out[key] = this.expression(condition, depth + 1);
      } else if (isOperatorKey(key)) {
        throw unknownOperator(key);
      } else {
        out[key] = this.condition(condition, depth + 1);
      }
    }
    return out;
  }

  private condition(value: unknown, depth: number): unknown {
    if (isPlainObject(value) && Object.keys(value).some(isOperatorKey)) return this.operators(value, depth);
    return this.literal(value, depth);
  }

  /** `{$gt: 1, $regex: 'x', ...}`: every key an operator. */
  private operators(value: Record<string, unknown>, depth: number): Filter {
    const out: Filter = {};
    for (const [op, arg] of Object.entries(value)) {
      this.visit(depth);
      if (!isOperatorKey(op)) throw new QueryError(`field "${op}" mixed with operators in one condition`);
      if (COMPARISON.has(op) || op === '$exists') out[op] = this.literal(arg, depth + 1);
      else if (op === '$in' || op === '$nin') out[op] = this.list(op, arg, depth + 1).map((item) => this.literal(item, depth + 2));
      else if (op === '$all') out[op] = this.list(op, arg, depth + 1).map((item) => this.allItem(item, depth + 2));
      else if (op === '$type') out[op] = this.typeSpec(arg, depth + 1);
      else if (op === '$mod') out[op] = this.mod(arg, depth + 1);
      else if (op === '$size') out[op] = this.size(arg, depth + 1);
      else if (BITS.has(op)) out[op] = this.bits(op, arg, depth + 1);
      else if (op === '$not') {
        if (!isPlainObject(arg) || !Object.keys(arg).every(isOperatorKey) || Object.keys(arg).length === 0) {
          throw new QueryError('$not takes operators, e.g. {$not: {$gt: 5}}');
        }
        out[op] = this.operators(arg, depth + 1);
      } else if (op === '$elemMatch') out[op] = this.elemMatch(arg, depth + 1);
      else if (op === '$regex') out[LINEAR_REGEX_OPERATOR] = checkRegex(arg, value.$options);
      else if (op === '$options') {
        if (!('$regex' in value)) throw new QueryError('$options needs $regex');
      } else throw unknownOperator(op);
    }
    return out;
  }

  /** An aggregation expression of `$expr`: comparisons and booleans over `$field`s and literals. */
  private expression(value: unknown, depth: number): unknown {
    this.visit(depth);
    if (Array.isArray(value)) {
      for (const item of value) this.expression(item, depth + 1);
    } else if (isPlainObject(value)) {
      const keys = Object.keys(value);
      if (keys.some(isOperatorKey)) {
        if (keys.length !== 1) throw new QueryError('an expression object holds one operator');
        if (!EXPRESSION_OPERATORS.has(keys[0]!)) {
          throw new QueryError(`${keys[0]} is not supported in $expr (only ${[...EXPRESSION_OPERATORS].join(', ')})`);
        }
      }
      for (const inner of Object.values(value)) this.expression(inner, depth + 1);
    } else if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new QueryError('query values must be JSON');
    }
    return value;
  }

  private elemMatch(arg: unknown, depth: number): Filter {
    if (!isPlainObject(arg) || Object.keys(arg).length === 0) throw new QueryError('$elemMatch takes a non-empty object');
    const keys = Object.keys(arg);
    // As mingo and MongoDB read it: only operators (not $and/$or/$nor) test the element itself.
    if (keys.every((key) => isOperatorKey(key) && !LOGICAL.has(key))) return this.operators(arg, depth);
    return this.filter(arg, depth);
  }

  private allItem(item: unknown, depth: number): unknown {
    if (isPlainObject(item) && Object.keys(item).some(isOperatorKey)) {
      const keys = Object.keys(item);
      if (keys.length !== 1 || keys[0] !== '$elemMatch') throw new QueryError('$all items are values or {$elemMatch: …}');
      this.visit(depth);
      return { $elemMatch: this.elemMatch(item.$elemMatch, depth + 1) };
    }
    return this.literal(item, depth);
  }

  private list(op: string, arg: unknown, depth: number): unknown[] {
    if (!Array.isArray(arg)) throw new QueryError(`${op} takes an array`);
    this.visit(depth);
    return arg;
  }

  private typeSpec(arg: unknown, depth: number): unknown {
    const items = Array.isArray(arg) ? arg : [arg];
    for (const item of items) {
      this.visit(depth);
      if (typeof item !== 'string' && typeof item !== 'number') throw new QueryError('$type takes type names or numbers');
    }
    return arg;
  }

  private mod(arg: unknown, depth: number): unknown {
    this.visit(depth);
    if (!Array.isArray(arg) || arg.length !== 2 || !arg.every((n) => typeof n === 'number' && Number.isFinite(n)) || arg[0] === 0) {
      throw new QueryError('$mod takes [divisor, remainder] with a non-zero divisor');
    }
    return arg;
  }

  private size(arg: unknown, depth: number): unknown {
    this.visit(depth);
    if (!Number.isInteger(arg) || (arg as number) < 0) throw new QueryError('$size takes a non-negative integer');
    return arg;
  }

  private bits(op: string, arg: unknown, depth: number): unknown {
    const items = Array.isArray(arg) ? arg : [arg];
    for (const item of items) {
      this.visit(depth);
      if (!Number.isInteger(item) || (item as number) < 0) throw new QueryError(`${op} takes a non-negative integer mask or bit positions`);
    }
    return arg;
  }

  /** A value compared as is; counted, and `$`-keys refused (they would be operators to MongoDB). */
  private literal(value: unknown, depth: number): unknown {
    this.visit(depth);
    if (Array.isArray(value)) {
      for (const item of value) this.literal(item, depth + 1);
    } else if (isPlainObject(value)) {
      for (const [key, inner] of Object.entries(value)) {
        if (isOperatorKey(key)) throw new QueryError(`"${key}": $-prefixed keys are not allowed in query values`);
        this.literal(inner, depth + 1);
      }
    } else if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new QueryError('query values must be JSON');
    }
    return value;
  }
}

/**
 * Checks a query's filter (the query minus `$sort`, `$limit`… ) and returns it rewritten
 * for mingo. Throws QueryError (TANDEM_INVALID_QUERY).
 */
export function prepareFilter(filter: Filter): Filter {
  return new FilterWalker().filter(filter, 0);
}
