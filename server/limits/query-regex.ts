/**
 * Regular expressions in client queries (`{field: {$regex, $options}}`).
 *
 * Two guards, because a regex is the one part of a query whose cost is not proportional to
 * the data it reads (`^(a+)+$` against a planted 30-character string blocked the event loop
 * for 9 s with JavaScript's backtracking engine):
 *   - a pattern with nested repetition (star height above 1, the shape of every classic
 *     catastrophic regex) or with more than 25 repetitions is refused (safe-regex2), and so
 *     is one RE2 cannot run (backreferences, lookaround): the same refusal whatever the
 *     store, so a MongoDB deployment (PCRE, backtracking) gets it too;
 *   - the in-process stores never run a client pattern with JavaScript's engine: mingo gets
 *     an operator that matches with RE2JS, whose time is linear in the input whatever the
 *     pattern. Strings longer than MAX_REGEX_SUBJECT_CHARS are not matched at all: the query
 *     is refused (TANDEM_QUERY_TOO_LARGE) rather than silently treating them as non-matches.
 */
import type { Options, QueryOperator } from 'mingo/core';
import { ensureArray, flatten, resolve } from 'mingo/util';
import { RE2JS } from 're2js';
import safeRegex from 'safe-regex2';
import { QueryError, QueryTooLargeError } from './query-errors.js';

/** Longest `$regex` pattern accepted, characters. */
export const MAX_REGEX_LENGTH = 512;
/** Longest string a regex is matched against, characters (see the module comment). */
export const MAX_REGEX_SUBJECT_CHARS = 256 * 1024;
/** Repetitions (`*`, `+`, `?`, `{n,m}`) one pattern may hold. */
const MAX_REPETITIONS = 25;

/**
 * The operator name the validated filter uses in place of `$regex` for mingo. Clients
 * cannot send it: the query validator accepts only the operators it knows.
 */
export const LINEAR_REGEX_OPERATOR = '$tandemLinearRegex';

/** A pattern that passed checkRegex, as handed to LINEAR_REGEX_OPERATOR. */
export interface CheckedRegex {
  pattern: string;
  flags: string;
}

function re2Flags(flags: string): number {
  let bits = 0;
  if (flags.includes('i')) bits |= RE2JS.CASE_INSENSITIVE;
  if (flags.includes('m')) bits |= RE2JS.MULTILINE;
  if (flags.includes('s')) bits |= RE2JS.DOTALL;
  return bits; // 'u': RE2 is always Unicode-aware
}

function compile(checked: CheckedRegex): RE2JS {
  try {
    return RE2JS.compile(checked.pattern, re2Flags(checked.flags));
  } catch (err) {
    throw new QueryError(`$regex ${JSON.stringify(checked.pattern)} is not supported: ${(err as Error).message}`);
  }
}

/**
 * Validates `{$regex: pattern, $options: flags}` and returns it for LINEAR_REGEX_OPERATOR.
 * Throws QueryError (TANDEM_INVALID_QUERY) for anything refused.
 */
export function checkRegex(pattern: unknown, options: unknown): CheckedRegex {
  if (typeof pattern !== 'string') throw new QueryError('$regex must be a string pattern');
  if (pattern.length > MAX_REGEX_LENGTH) throw new QueryError(`$regex patterns are limited to ${MAX_REGEX_LENGTH} characters`);
  const flags = options ?? '';
  if (typeof flags !== 'string' || !/^[imsu]*$/.test(flags)) throw new QueryError('$options may only hold the flags i, m, s and u');
  if (!safeRegex(pattern, { limit: MAX_REPETITIONS })) {
    throw new QueryError(
      `$regex ${JSON.stringify(pattern)} is refused: nested repetition (like (a+)+) or more than ${MAX_REPETITIONS} repetitions can take exponential time`,
    );
  }
  const checked = { pattern, flags };
  compile(checked);
  return checked;
}

function isCheckedRegex(value: unknown): value is CheckedRegex {
  const v = value as Partial<CheckedRegex> | null;
  return typeof v === 'object' && v !== null && typeof v.pattern === 'string' && typeof v.flags === 'string';
}

/**
 * mingo query operator for a CheckedRegex: matches as mingo's own `$regex` does (the
 * field, or any string in it when it is an array, one level of nesting flattened) but
 * with RE2JS.
 */
export const linearRegex: QueryOperator = (selector: string, value: unknown, _options: Options) => {
  if (!isCheckedRegex(value)) throw new QueryError('internal: regex operator without a checked pattern');
  const re = compile(value);
  const match = (x: unknown): boolean => {
    if (typeof x !== 'string') return false;
    if (x.length > MAX_REGEX_SUBJECT_CHARS) {
      throw new QueryTooLargeError(
        `$regex is only matched against strings up to ${MAX_REGEX_SUBJECT_CHARS} characters; a document holds a longer one`,
      );
    }
    return re.test(x);
  };
  return (doc) => {
    const values = ensureArray(resolve(doc, selector, { unwrapArray: true }));
    return values.some(match) || flatten(values, 1).some(match);
  };
};
