/**
 * ot-text-unicode's transform and compose of a long text op with a short one, computed on
 * the window of the long op the short one touches.
 *
 * The undo history holds a step per burst of typing: one text op of every character typed
 * and deleted, spread over the document. Each remote keystroke transforms it, each local
 * one composes into it, and ot-text-unicode does both by re-taking, re-slicing and
 * re-validating every component (plus the code point count of every deleted string) of
 * the long op. Yet only the components within the short op's reach can change: those
 * before its first position come out as they are, and so do those after its last. Here
 * the library runs on that window alone; the components before it are copied, those after
 * it appended after the skip that puts them where the library would, merged at the seams
 * as the library merges. Results equal the library's exactly (test/unit/text-window.test.ts
 * checks them against it); ops too short to gain, or not in the normalized form the library
 * produces, go to the library whole. Outside the window nothing is re-validated: the only
 * thing the library would refuse there, deleted text with a lone surrogate, cannot be in a
 * document (servers refuse such text).
 */
import * as textUnicode from 'ot-text-unicode';
import type { TextOp, TextOpComponent } from 'ot-text-unicode';

type Side = 'left' | 'right';

const text = textUnicode.type;

/** Long ops only: below this many components the library is as quick. */
const WINDOW_MIN_COMPONENTS = 16;

/** Code points in `s`, counted as ot-text-unicode counts them (it throws on a split pair). */
function codePoints(s: string): number {
  let pairs = 0;
  let i = 0;
  for (; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdfff) {
      pairs++;
      i++;
    }
  }
  if (i !== s.length) throw new Error('Invalid offset - splits unicode bytes');
  return i - pairs;
}

function deleteLength(d: number | string): number {
  return typeof d === 'number' ? d : codePoints(d);
}

/** Characters of the document before the op that a component covers (skips and deletes). */
function preLength(c: TextOpComponent): number {
  if (typeof c === 'number') return c;
  if (typeof c === 'string') return 0;
  return deleteLength(c.d);
}

/** Characters of the document after the op that a component covers (skips and inserts). */
function postLength(c: TextOpComponent): number {
  if (typeof c === 'number') return c;
  if (typeof c === 'string') return codePoints(c);
  return 0;
}

/**
 * Ops known to be in normalized form: every result of this module (the library's are
 * normalized, and so is what stitch() makes of normalized parts). The history's step is
 * the long op of one call after another: it is checked once, not on every keystroke.
 */
const normalized = new WeakSet<TextOp>();

function known(op: TextOp): TextOp {
  normalized.add(op);
  return op;
}

/**
 * True for an op in the form the library's own results have (the history's steps are
 * always such results): no empty component, no two neighbours of one kind (it merges
 * those), no trailing skip. Anything else goes to the library, which normalizes it or
 * throws. A delete's text is not counted here.
 */
function isNormalized(op: TextOp): boolean {
  if (normalized.has(op)) return true;
  let previous = '';
  for (const c of op) {
    const kind = typeof c;
    if (kind === previous) return false;
    previous = kind;
    if (typeof c === 'number') {
      if (!(c > 0)) return false;
    } else if (typeof c === 'string') {
      if (c.length === 0) return false;
    } else if (typeof c !== 'object' || c === null || !(typeof c.d === 'number' ? c.d > 0 : typeof c.d === 'string' && c.d.length > 0)) {
      return false;
    }
  }
  if (previous === 'number') return false;
  normalized.add(op);
  return true;
}

/** The library's append: drops empty components, merges one into a last of its kind. */
function append(out: TextOpComponent[], c: TextOpComponent): void {
  if (c === 0 || c === '' || (typeof c === 'object' && (c.d === 0 || c.d === ''))) return;
  const last = out[out.length - 1];
  if (out.length === 0 || typeof last !== typeof c) {
    out.push(c);
    return;
  }
  if (typeof c === 'object') {
    // A new object: components may be shared with the input ops, which stay untouched.
    const before = (last as { d: number | string }).d;
    out[out.length - 1] = {
      d: typeof before === 'string' && typeof c.d === 'string' ? before + c.d : deleteLength(before) + deleteLength(c.d),
    };
  } else {
    out[out.length - 1] = (last as number & string) + (c as number & string);
  }
}

function sum(op: TextOp, length: (c: TextOpComponent) => number): number {
  let total = 0;
  for (const c of op) total += length(c);
  return total;
}

/** `op` without its leading `skip` positions taken by a prefix that covered `covered` of them. */
function withoutLead(op: TextOp, skip: number, covered: number): TextOp {
  if (skip === 0) return op;
  const rest = op.slice(1);
  if (skip > covered) rest.unshift(skip - covered);
  return rest;
}

/**
 * `prefix`, then the window's result, then `tail` from document position `tailAt` of the
 * result's input (a skip fills the gap), merged at the seams and trimmed as the library does.
 */
function stitch(prefix: TextOp, prefixPre: number, middle: TextOp, tailAt: number, tail: TextOp): TextOp | null {
  const out = prefix.slice();
  for (const c of middle) append(out, c);
  if (tail.length > 0) {
    const gap = tailAt - prefixPre - sum(middle, preLength);
    if (gap < 0) return null;
    append(out, gap);
    append(out, tail[0]!);
    for (let k = 1; k < tail.length; k++) out.push(tail[k]!);
  }
  if (typeof out[out.length - 1] === 'number') out.pop();
  return out;
}

/**
 * Where the short op's reach in `long` ends: from `from`, whole components until `span`
 * positions are covered, then the inserts standing right there (the library peeks at
 * those). Returns the end index and the positions covered.
 */
function windowEnd(long: TextOp, from: number, span: number): { end: number; covered: number } {
  let end = from;
  let covered = 0;
  while (end < long.length && covered < span) covered += preLength(long[end++]!);
  while (end < long.length && typeof long[end] === 'string') end++;
  return { end, covered };
}

/** ot-text-unicode's `transform(op, other, side)`, windowed when `op` is long. */
export function transformText(op: TextOp, other: TextOp, side: Side): TextOp {
  const windowed = op.length >= WINDOW_MIN_COMPONENTS && isNormalized(op) && isNormalized(other) ? transformWindow(op, other, side) : null;
  return known(windowed ?? text.transform(op, other, side));
}

function transformWindow(op: TextOp, other: TextOp, side: Side): TextOp | null {
  // Before the other op's first position, op's components come out as they are: those that
  // end there at the latest, inserts included, but not inserts right at it (the library
  // orders those against the other op's by side).
  const lead = typeof other[0] === 'number' ? other[0] : 0;
  let start = 0;
  let at = 0;
  while (start < op.length && at < lead) {
    const c = op[start]!;
    const length = preLength(c);
    if (at + length > lead) break;
    at += length;
    start++;
  }
  const rest = withoutLead(other, lead, at);
  const { end, covered } = windowEnd(op, start, sum(rest, preLength));
  const window = op.slice(start, end);
  // A trailing skip is not a valid op; past its end the library skips anyway.
  if (typeof window[window.length - 1] === 'number') window.pop();
  const middle = text.transform(window, rest, side);
  // The tail starts where the window ended, moved by what the other op inserted and deleted.
  const tailAt = at + covered + sum(other, postLength) - sum(other, preLength);
  return stitch(op.slice(0, start), at, middle, tailAt, op.slice(end));
}

/** ot-text-unicode's `compose(first, second)`, windowed when `second` is long. */
export function composeText(first: TextOp, second: TextOp): TextOp {
  const windowed =
    second.length >= WINDOW_MIN_COMPONENTS && isNormalized(first) && isNormalized(second) ? composeWindow(first, second) : null;
  return known(windowed ?? text.compose(first, second));
}

function composeWindow(first: TextOp, second: TextOp): TextOp | null {
  // Where `first` only skips, `second`'s components come out as they are.
  const lead = typeof first[0] === 'number' ? first[0] : 0;
  let start = 0;
  let at = 0;
  while (start < second.length && at < lead) {
    const length = preLength(second[start]!);
    if (at + length > lead) break;
    at += length;
    start++;
  }
  const rest = withoutLead(first, lead, at);
  // `second` counts positions in the document after `first`: the window spans what `rest` leaves.
  const { end, covered } = windowEnd(second, start, sum(rest, postLength));
  const window = second.slice(start, end);
  if (typeof window[window.length - 1] === 'number') window.pop();
  const middle = text.compose(rest, window);
  // The result counts positions in the document before `first`: undo what it inserted and deleted.
  const tailAt = at + covered - sum(first, postLength) + sum(first, preLength);
  return stitch(second.slice(0, start), at, middle, tailAt, second.slice(end));
}
