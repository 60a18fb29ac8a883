/**
 * ot-text-unicode counts positions in code points, so its `apply` turns every position into a
 * UTF-16 index with a JS loop over the text before it, then joins the prefix into a new string:
 * a one-character edit to a 1 MB string costs O(length). In a string without surrogate code
 * units (U+D800–U+DFFF) code points and UTF-16 units coincide, so positions are plain index
 * arithmetic; this module remembers which long strings are known to be such, and applies text
 * ops to them without walking the text (see applyTextOp for the copy V8 may still make).
 * Strings with surrogates keep the original, exact code.
 *
 * Shared by the server and the browser SDK: no Node-only APIs.
 */
import * as textUnicode from 'ot-text-unicode';
import type { TextOp } from 'ot-text-unicode';

const SURROGATE = /[\uD800-\uDFFF]/;

export interface MemoLimits {
  /** Shorter strings are scanned every time: cheaper than keeping them. */
  minLength: number;
  maxEntries: number;
  /** UTF-16 units held by all entries together (the memo keeps its strings alive). */
  maxChars: number;
}

export const DEFAULT_MEMO_LIMITS: Readonly<MemoLimits> = Object.freeze({
  minLength: 1024,
  maxEntries: 1024,
  maxChars: 64 * 1024 * 1024,
});

interface Entry {
  text: string;
  surrogateFree: boolean;
}

/**
 * Which long strings are free of surrogate code units. Strings are primitives with no identity
 * to hang a WeakMap on, so it keeps the latest string seen at each length. A lookup compares
 * `entry.text === text`: V8 answers that by pointer when it is the very string recorded (the
 * usual case: a document's text is the result of the previous apply), and otherwise compares
 * contents up to the first difference (a native loop, about 0.1 ms per MB when equal). The bad case is a different string
 * of the same length sharing a long prefix with the recorded one (two versions of one document
 * after a replace of equal length): that costs a native compare to the difference, then a
 * rescan, then it replaces the entry. Evicts oldest-used first (Map order).
 */
export class SurrogateMemo {
  private readonly entries = new Map<number, Entry>();
  private heldChars = 0;

  constructor(readonly limits: Readonly<MemoLimits> = DEFAULT_MEMO_LIMITS) {}

  get size(): number {
    return this.entries.size;
  }

  get chars(): number {
    return this.heldChars;
  }

  /** True when `text` is the string this memo holds for its length. */
  holds(text: string): boolean {
    return this.entries.get(text.length)?.text === text;
  }

  isSurrogateFree(text: string): boolean {
    if (text.length < this.limits.minLength) return !SURROGATE.test(text);
    const entry = this.entries.get(text.length);
    if (entry !== undefined && entry.text === text) {
      this.entries.delete(text.length);
      this.entries.set(text.length, entry);
      return entry.surrogateFree;
    }
    const surrogateFree = !SURROGATE.test(text);
    this.remember(text, surrogateFree);
    return surrogateFree;
  }

  /**
   * An op turned `input` into another string, so the document no longer holds it: drop it, or
   * every version of a hot long string would stay alive here.
   */
  forget(input: string): void {
    const entry = this.entries.get(input.length);
    if (entry !== undefined && entry.text === input) this.drop(input.length, entry);
  }

  /** `forget(input)`, and record what is already known of the string that replaced it. */
  replace(input: string, result: string, resultSurrogateFree: boolean): void {
    this.forget(input);
    this.remember(result, resultSurrogateFree);
  }

  private remember(text: string, surrogateFree: boolean): void {
    const { minLength, maxEntries, maxChars } = this.limits;
    if (text.length < minLength || text.length > maxChars) return;
    const previous = this.entries.get(text.length);
    if (previous !== undefined) this.drop(text.length, previous);
    this.entries.set(text.length, { text, surrogateFree });
    this.heldChars += text.length;
    while (this.entries.size > maxEntries || this.heldChars > maxChars) {
      const [length, oldest] = this.entries.entries().next().value as [number, Entry];
      this.drop(length, oldest);
    }
  }

  private drop(length: number, entry: Entry): void {
    this.entries.delete(length);
    this.heldChars -= entry.text.length;
  }
}

/** The process- or page-wide memo that the fast apply and the doc-size limit share. */
export const surrogateMemo = new SurrogateMemo();

/** True when `text` has no surrogate code unit, so its code points are its UTF-16 units. */
export function isSurrogateFree(text: string): boolean {
  return surrogateMemo.isSurrogateFree(text);
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
 * ot-text-unicode's `apply`, in O(op) on a long surrogate-free string. Same results and the
 * same errors as the original, which it calls for anything else. One difference: a skip or
 * delete of Infinity makes the original loop forever, and this throws or clamps as it would
 * for any other count past the end (as it does for 1e15, where the original takes days).
 */
export function applyTextOp(str: string, op: TextOp): string {
  if (typeof str !== 'string' || str.length < surrogateMemo.limits.minLength) return original.apply(str, op);
  original.checkOp(op);
  if (!surrogateMemo.isSurrogateFree(str)) {
    const result = original.apply(str, op);
    // Not recorded as having surrogates: the op may have deleted the last one, and the next
    // lookup's native scan costs less than the original apply that follows it anyway.
    surrogateMemo.forget(str);
    return result;
  }
  // slice and + make V8 sliced and cons strings, so this copies nothing of a flat input. An
  // input that is the previous apply's cons string is flattened by V8 at the first slice: a
  // native copy (about 1 ms per MB with its allocation), the one cost here left O(length).
  let result = '';
  let at = 0;
  let insertsSurrogateFree = true;
  for (const c of op) {
    if (typeof c === 'number') {
      const end = at + surrogateFreeSteps(c);
      if (end > str.length) throw Error('The op is too long for this document');
      result += str.slice(at, end);
      at = end;
    } else if (typeof c === 'string') {
      result += c;
      if (insertsSurrogateFree && SURROGATE.test(c)) insertsSurrogateFree = false;
    } else if (typeof c === 'object') {
      const n = typeof c.d === 'number' ? c.d : countCodePoints(c.d);
      at = Math.min(at + surrogateFreeSteps(n), str.length);
    }
    // checkOp lets components of other types (true, undefined…) through; apply ignores them.
  }
  result += str.slice(at);
  // Exact, not a guess: the result is pieces of a surrogate-free input and the inserts.
  surrogateMemo.replace(str, result, insertsSurrogateFree);
  return result;
}

/** ot-text-unicode with the fast apply; every other function (transform, compose…) is its own. */
export const fastTextUnicode: typeof textUnicode.type = Object.freeze({ ...original, apply: applyTextOp });
