import * as json1 from 'ot-json1';
import type { Doc, JSONOp, Path } from 'ot-json1';
import { isSurrogateFree, sliceText } from './text-positions.js';

/** Why an op does not fit the document it is submitted to, and where. */
export interface OpMismatch {
  path: Path;
  reason: string;
}

type Component = Record<string, unknown>;

/** Calls `visit` with each component of a json1 op and the path it applies at. */
function eachComponent(op: JSONOp, visit: (component: Component, path: Path) => void): void {
  const walk = (branch: readonly unknown[], base: Path): void => {
    const path: Array<string | number> = [...base];
    for (const item of branch) {
      if (typeof item === 'string' || typeof item === 'number') path.push(item);
      else if (Array.isArray(item)) walk(item, path);
      else if (item !== null && typeof item === 'object') visit(item as Component, path);
    }
  };
  if (Array.isArray(op)) walk(op, []);
}

function valueAt(doc: Doc | undefined, path: Path): { found: boolean; value?: unknown } {
  let value: unknown = doc;
  for (const key of path) {
    if (
      typeof key === 'number'
        ? !Array.isArray(value) || key < 0 || key >= value.length
        : typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, key)
    ) {
      return { found: false };
    }
    value = (value as Record<string | number, unknown>)[key];
  }
  return { found: true, value };
}

/**
 * The text of code points [start, end) of `text`, and how many code points it has (ot-text-unicode's
 * unit). Without surrogates those are UTF-16 units: the length is known and the slice comes
 * from the memo's pieces (O(1) and O(slice) on a long text an apply returned); otherwise the
 * text is split into code points, O(text).
 */
function codePoints(text: string): { count: number; slice: (start: number, end: number) => string } {
  if (isSurrogateFree(text)) return { count: text.length, slice: (start, end) => sliceText(text, start, end) };
  const chars = [...text];
  return { count: chars.length, slice: (start, end) => chars.slice(start, end).join('') };
}

/** The text deleted by an ot-text-unicode op at each position, checked against `text`. */
function textDeleteMismatch(text: string, textOp: unknown): string | null {
  if (!Array.isArray(textOp)) return null;
  const chars = codePoints(text);
  let at = 0;
  for (const part of textOp) {
    if (typeof part === 'number') at += part;
    else if (typeof part === 'object' && part !== null && 'd' in part) {
      const d = (part as { d: unknown }).d;
      const length = typeof d === 'string' ? [...d].length : typeof d === 'number' ? d : 0;
      if (at + length > chars.count) return `deletes ${length} characters at ${at} but the text has ${chars.count}`;
      if (typeof d === 'string') {
        const actual = chars.slice(at, at + length);
        if (actual !== d) return `deletes ${JSON.stringify(d)} at ${at} but the text there is ${JSON.stringify(actual)}`;
      }
      at += length;
    }
  }
  return null;
}

const EDIT_KEYS = new Set(['es', 'ena', 'e', 'et']);

/** The op's inserts and removals alone (its edits dropped), or null if nothing is left. */
function withoutEdits(op: readonly unknown[]): unknown[] | null {
  const out: unknown[] = [];
  let acts = false;
  for (const item of op) {
    if (Array.isArray(item)) {
      const child = withoutEdits(item);
      if (child) {
        out.push(child);
        acts = true;
      }
    } else if (item !== null && typeof item === 'object') {
      const rest = Object.fromEntries(Object.entries(item).filter(([key]) => !EDIT_KEYS.has(key)));
      if (Object.keys(rest).length > 0) {
        out.push(rest);
        acts = true;
      }
    } else {
      out.push(item);
    }
  }
  return acts ? out : null;
}

/**
 * Checks what json1 itself does not when an op is applied: that each edit finds a value of
 * its kind at its path, that text deleted by content is the text there, and that a removal
 * that names its value names the one there. Ops that move values (picks and drops) are only
 * checked by json1's apply: their later paths refer to the document mid-op.
 */
export function checkOpAgainst(doc: Doc | undefined, op: JSONOp): OpMismatch | null {
  let mismatch: OpMismatch | null = null;
  let moves = false;
  eachComponent(op, (c) => {
    if ('p' in c || 'd' in c) moves = true;
  });
  if (moves) return null;
  // json1 removes at paths in the document before the op, then inserts, then edits at paths
  // in the document after the inserts and removals: with both in one op (a composed op),
  // edits are checked against that intermediate document. json1's apply shares what it does
  // not change, so this costs the paths, not the document.
  let edited: Doc | undefined = doc;
  const structure = Array.isArray(op) ? withoutEdits(op) : null;
  if (structure && JSON.stringify(structure) !== JSON.stringify(op)) {
    try {
      edited = json1.type.apply(doc as Doc, json1.type.normalize(structure as JSONOp)) as Doc;
    } catch {
      return null; // json1's apply refuses the op itself, with its own message
    }
  }
  eachComponent(op, (c, path) => {
    if (mismatch) return;
    const before = valueAt(doc, path);
    const target = valueAt(edited, path);
    if ('es' in c) {
      if (!target.found || typeof target.value !== 'string') {
        mismatch = {
          path,
          reason: target.found
            ? `a text edit needs a string, found ${JSON.stringify(target.value)?.slice(0, 40)}`
            : 'a text edit needs a string, found nothing',
        };
        return;
      }
      const reason = textDeleteMismatch(target.value, c.es);
      if (reason) mismatch = { path, reason };
    } else if ('ena' in c) {
      if (!target.found || typeof target.value !== 'number') mismatch = { path, reason: 'adding needs a number there' };
    } else if ('r' in c && c.r !== true && c.r !== undefined) {
      if (!before.found) mismatch = { path, reason: 'removes a value that is not there' };
      else if (JSON.stringify(before.value) !== JSON.stringify(c.r))
        mismatch = { path, reason: 'removes a value other than the one there' };
    } else if ('r' in c && !before.found) {
      mismatch = { path, reason: 'removes a value that is not there' };
    }
  });
  return mismatch;
}
