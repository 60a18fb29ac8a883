/**
 * ot-text-unicode counts positions in code points, so its `apply` turns every position into a
 * UTF-16 index with a JS loop over the text before it, then joins the prefix into a new string:
 * a one-character edit to a 1 MB string costs O(length). In a string without surrogate code
 * units (U+D800–U+DFFF) code points and UTF-16 units coincide, so positions are plain index
 * arithmetic; this module remembers which long strings are known to be such
 * (surrogate-memo.ts), with the flat pieces each is made of (text-layout.ts), and applies text
 * ops to them, and slices them, without walking or copying the text. Strings with surrogates
 * keep the original, exact code.
 *
 * Shared by the server and the browser SDK: no Node-only APIs.
 */
import * as textUnicode from 'ot-text-unicode';
import type { TextOp } from 'ot-text-unicode';
import { SurrogateMemo } from './surrogate-memo.js';
import { editLayout, sliceLayout, type TextEdit } from './text-layout.js';

export { DEFAULT_MEMO_LIMITS, type MemoLimits, SurrogateMemo } from './surrogate-memo.js';

const SURROGATE = /[\uD800-\uDFFF]/;

/** The process- or page-wide memo that the fast apply, sliceText and the doc-size limit share. */
export const surrogateMemo = new SurrogateMemo();

/**
 * True when `text` has no surrogate code unit, so its code points are its UTF-16 units. A
 * caller that knows where the text is (a document and a path, as one string) passes it as
 * `key`: then the lookup finds the result of the last apply there by pointer, instead of
 * maybe comparing it with other texts of the same length first (see SurrogateMemo).
 */
export function isSurrogateFree(text: string, key?: string): boolean {
  return surrogateMemo.isSurrogateFree(text, key);
}

/**
 * `text.slice(start, end)`, assembled from the pieces of a memoised surrogate-free string
 * (O(pieces + slice length)) instead of V8 copying all of `text` first when it is the cons
 * string an apply returned.
 */
export function sliceText(text: string, start: number, end: number, memo: SurrogateMemo = surrogateMemo): string {
  if (text.length >= memo.limits.minLength && Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end) {
    const entry = end <= text.length ? memo.find(text) : undefined;
    if (entry?.surrogateFree) return sliceLayout(memo.layout(entry), start, end);
  }
  return text.slice(start, end);
}

/**
 * Code points in `text` as unicount's strPosToUni counts them (ot-text-unicode's `dlen` of a
 * delete's text): any surrogate unit takes the next unit along. Unlike strPosToUni it does not
 * throw when that runs past the end (checkOp has refused such a delete before apply runs).
 */
export function countCodePoints(text: string): number {
  let pairs = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdfff) {
      pairs++;
      i++;
    }
  }
  return text.length - pairs;
}

/**
 * UTF-16 units unicount's uniToStrPos steps over for `n` code points of a surrogate-free
 * string: one per loop turn while `n > 0`, so a fraction counts as a whole unit and NaN or
 * less than 1 as none. It keeps stepping past the end (charCodeAt gives NaN there).
 */
export const surrogateFreeSteps = (n: number): number => (n > 0 ? Math.ceil(n) : 0);

const original = textUnicode.type;

/**
 * The op's edits in UTF-16 offsets of a surrogate-free `length`-unit string, read as
 * ot-text-unicode's apply reads it, and whether its inserts are surrogate-free too.
 */
function editsOf(length: number, op: TextOp): { edits: TextEdit[]; insertsSurrogateFree: boolean } {
  const edits: TextEdit[] = [];
  let at = 0;
  let insertsSurrogateFree = true;
  for (const c of op) {
    if (typeof c === 'number') {
      const end = at + surrogateFreeSteps(c);
      if (end > length) throw Error('The op is too long for this document');
      at = end;
    } else if (typeof c === 'string') {
      if (c.length > 0) edits.push({ at, end: at, insert: c });
      if (insertsSurrogateFree && SURROGATE.test(c)) insertsSurrogateFree = false;
    } else if (typeof c === 'object') {
      const n = typeof c.d === 'number' ? c.d : countCodePoints(c.d);
      const end = Math.min(at + surrogateFreeSteps(n), length);
      if (end > at) edits.push({ at, end, insert: '' });
      at = end;
    }
    // checkOp lets components of other types (true, undefined…) through; apply ignores them.
  }
  return { edits, insertsSurrogateFree };
}

/**
 * ot-text-unicode's `apply`, in O(op + pieces) on a long surrogate-free string: the result is
 * built from the input's pieces, never by reading the input string itself (text-layout.ts).
 * Same results and the same errors as the original, which it calls for anything else. One
 * difference: a skip or delete of Infinity makes the original loop forever, and this throws
 * or clamps as it would for any other count past the end (as it does for 1e15, where the
 * original takes days). `memo` is for tests; json1 calls it with two arguments.
 */
export function applyTextOp(str: string, op: TextOp, memo: SurrogateMemo = surrogateMemo): string {
  if (trying) return tryTextOp(str, op, memo);
  if (typeof str !== 'string' || str.length < memo.limits.minLength) return original.apply(str, op);
  original.checkOp(op);
  const entry = memo.entry(str);
  if (!entry.surrogateFree) {
    const result = original.apply(str, op);
    // Not recorded as having surrogates: the op may have deleted the last one, and the next
    // lookup's native scan costs less than the original apply that follows it anyway.
    memo.drop(entry);
    return result;
  }
  const { edits, insertsSurrogateFree } = editsOf(str.length, op);
  if (edits.length === 0) return str;
  const result = editLayout(memo.layout(entry), edits, memo.limits);
  // Exact, not a guess: the result is pieces of a surrogate-free input and the inserts.
  memo.replace(entry, result.text, insertsSurrogateFree, insertsSurrogateFree ? result.layout : null);
  return result.text;
}

/** Set while `trialApply` runs: applies must leave the memo as they found it. */
let trying = false;

function tryTextOp(str: string, op: TextOp, memo: SurrogateMemo): string {
  if (typeof str !== 'string' || str.length < memo.limits.minLength) return original.apply(str, op);
  original.checkOp(op);
  const entry = memo.entry(str);
  if (!entry.surrogateFree) return original.apply(str, op);
  const { edits } = editsOf(str.length, op);
  return edits.length === 0 ? str : editLayout(memo.layout(entry), edits, memo.limits).text;
}

/**
 * Runs `apply` (a json1 apply whose result is thrown away, such as the SDK's check that an
 * op fits before ShareDB applies it) without the memo forgetting the input: the real apply
 * that follows then still finds the text's pieces instead of copying the whole string.
 */
export function trialApply<T>(apply: () => T): T {
  const outer = trying;
  trying = true;
  try {
    return apply();
  } finally {
    trying = outer;
  }
}

/** ot-text-unicode with the fast apply; every other function (transform, compose…) is its own. */
export const fastTextUnicode: typeof textUnicode.type = Object.freeze({ ...original, apply: applyTextOp });
