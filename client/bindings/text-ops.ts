/**
 * Pure helpers shared by the editor bindings: Unicode code point ⇄ UTF-16 conversions,
 * local diffs turned into text-unicode ops, remote json1 ops read back as the text edit they
 * make to one string, and caret mapping through a text op.
 *
 * Units: json1 text edits (ot-text-unicode) count Unicode CODE POINTS; the DOM and
 * CodeMirror count UTF-16 code units. Every value named `…Cp` here is in code points.
 */
import * as json1 from 'ot-json1';
import type { JSONOp, Path } from 'ot-json1';
import type { TextOp, TextOpComponent } from 'ot-text-unicode';

const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;

/** Number of code points in `s` (a lone surrogate counts as one, as ot-text-unicode does). */
export function cpLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i++;
    n++;
  }
  return n;
}

/** Code point offset of UTF-16 index `index` in `s` (an index inside a pair counts the pair). */
export function utf16ToCp(s: string, index: number): number {
  return cpLength(s.slice(0, Math.max(0, Math.min(index, s.length))));
}

/** UTF-16 index of code point offset `cp` in `s`, clamped to the string. */
export function cpToUtf16(s: string, cp: number): number {
  return advanceCp(s, 0, cp);
}

/** The UTF-16 index `cp` code points after UTF-16 index `from` in `s`, clamped. */
export function advanceCp(s: string, from: number, cp: number): number {
  let i = from;
  for (let n = 0; n < cp && i < s.length; n++) {
    i += isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1)) ? 2 : 1;
  }
  return i;
}

/** The value at `path` inside a JSON document, or undefined when the path does not exist. */
export function valueAt(data: unknown, path: Path): unknown {
  let node: unknown = data;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

/** The string at `path`, or null when there is none (missing doc, missing key, other type). */
export function stringAt(data: unknown, path: Path): string | null {
  const value = valueAt(data, path);
  return typeof value === 'string' ? value : null;
}

/**
 * The smallest single replacement turning `before` into `after`, as a text-unicode op.
 *
 * `caret` (UTF-16 index in `after`, e.g. selectionEnd after an input event) resolves the
 * ambiguity of repeated characters: typing "a" into "a|a" must insert at 1, not at 2, or the
 * remote side sees the other "a" move. The unchanged suffix may not reach left of the caret,
 * because whatever was just typed or deleted sits right before it.
 */
export function diffToTextOp(before: string, after: string, caret = after.length): TextOp {
  if (before === after) return [];
  const maxSuffix = Math.min(before.length, after.length, Math.max(0, after.length - caret));
  let suffix = 0;
  while (suffix < maxSuffix && before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)) {
    suffix++;
  }
  const maxPrefix = Math.min(before.length, after.length) - suffix;
  let prefix = 0;
  while (prefix < maxPrefix && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix++;
  // Never split a surrogate pair: an op must cut the string between code points.
  if (prefix > 0 && isHigh(before.charCodeAt(prefix - 1))) prefix--;
  if (suffix > 0 && isLow(before.charCodeAt(before.length - suffix))) suffix--;
  const deleted = before.slice(prefix, before.length - suffix);
  const inserted = after.slice(prefix, after.length - suffix);
  const op: TextOpComponent[] = [];
  const skip = cpLength(before.slice(0, prefix));
  if (skip > 0) op.push(skip);
  if (deleted.length > 0) op.push({ d: cpLength(deleted) });
  if (inserted.length > 0) op.push(inserted);
  return op;
}

/** Wraps a text op on the string at `path` as a json1 op (null for an empty text op). */
export function textEditOp(path: Path, textOp: TextOp): JSONOp {
  if (textOp.length === 0) return null;
  return json1.editOp(path, 'text-unicode', textOp);
}

/**
 * What a json1 op does to the string at `path`:
 * - `none`: nothing;
 * - `text`: exactly the text edit `op` (code points), the string stays where it was;
 * - `other`: anything else (replaced, removed, moved, or an edit this reader does not
 *   understand). Bindings then re-read the whole string.
 */
export type StringChange = { kind: 'none' } | { kind: 'text'; op: TextOp } | { kind: 'other' };

const TEXT_TYPES = new Set(['text-unicode', 'http://sharejs.org/types/text-unicode']);

function isComponent(item: unknown): item is Record<string, unknown> {
  return typeof item === 'object' && item !== null && !Array.isArray(item);
}

function samePath(a: Path, b: Path): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

export function stringChangeAt(op: JSONOp, path: Path): StringChange {
  if (op === null) return { kind: 'none' };
  // Moves and removals of the string or an ancestor (and index shifts in ancestor lists).
  const moved = json1.type.transformPosition(path, op);
  if (moved === null || !samePath(moved, path)) return { kind: 'other' };
  return walk(op, path, 0);
}

/** Walks one op list (see ot-json1's JSONOp: keys, then a component, then child lists). */
function walk(list: readonly unknown[], path: Path, startDepth: number): StringChange {
  let depth = startDepth;
  for (const item of list) {
    if (typeof item === 'string' || typeof item === 'number') {
      if (depth >= path.length) return { kind: 'other' };
      if (item !== path[depth]) return { kind: 'none' };
      depth++;
    } else if (Array.isArray(item)) {
      if (depth >= path.length) return { kind: 'other' };
      if (item[0] === path[depth]) return walk(item, path, depth);
    } else if (isComponent(item)) {
      const structural = item.r !== undefined || item.i !== undefined || item.p != null || item.d != null;
      if (depth < path.length) {
        if (structural || item.es !== undefined || item.e !== undefined || item.ena !== undefined) return { kind: 'other' };
        continue;
      }
      if (structural) return { kind: 'other' };
      if (Array.isArray(item.es)) return { kind: 'text', op: item.es as TextOp };
      if (Array.isArray(item.e) && typeof item.et === 'string' && TEXT_TYPES.has(item.et)) return { kind: 'text', op: item.e as TextOp };
      return { kind: 'other' };
    }
  }
  return { kind: 'none' };
}

/** Length of a text-unicode delete component in code points. */
const deleteLength = (d: number | string): number => (typeof d === 'number' ? d : cpLength(d));

/**
 * Where code point offset `pos` ends up after `op`. At an insertion point, `assoc` -1 keeps
 * the position before the inserted text (a caret stays after the character its user typed)
 * and 1 moves it after (the start of a selection does not swallow text inserted at its edge).
 */
export function mapOffset(op: TextOp, pos: number, assoc: -1 | 1 = -1): number {
  let oldPos = 0;
  let result = pos;
  for (const c of op) {
    if (oldPos > pos) break;
    if (typeof c === 'number') {
      oldPos += c;
    } else if (typeof c === 'string') {
      if (oldPos < pos || assoc > 0) result += cpLength(c);
    } else {
      const end = oldPos + deleteLength(c.d);
      result -= Math.min(end, pos) - Math.min(oldPos, pos);
      oldPos = end;
    }
  }
  return result;
}

/** One change of a text op in code points of the string before it: replace [from, to) by `insert`. */
export interface TextChange {
  fromCp: number;
  toCp: number;
  insert: string;
}

/** The changes a text op makes, in order, positions in the string before the op. */
export function textChanges(op: TextOp): TextChange[] {
  const changes: TextChange[] = [];
  let pos = 0;
  for (const c of op) {
    if (typeof c === 'number') {
      pos += c;
      continue;
    }
    const last = changes[changes.length - 1];
    const change = last && last.toCp === pos ? last : { fromCp: pos, toCp: pos, insert: '' };
    if (change !== last) changes.push(change);
    if (typeof c === 'string') change.insert += c;
    else {
      pos += deleteLength(c.d);
      change.toCp = pos;
    }
  }
  return changes;
}
