/**
 * json1 transform and compose for the undo history (undo-manager.ts), with a fast path for
 * its commonest case: one side is a plain text edit at a path of object keys (typing).
 *
 * The history is carried past every remote op and grows a step per burst of typing, so it
 * transforms a large op against a small one over and over. json1 walks and rebuilds both
 * whole ops with its cursors for that (about 20 µs for a one-character edit against a step
 * of a hundred edits: most of the SDK's CPU per op under load); the text work alone is a
 * tenth of that. When neither op has anything but that text edit on the path down to the
 * string — no insert, removal, move or other edit there — the text edit moves nothing else
 * and nothing else moves it, so json1's result is the other op with only the edit at that
 * string replaced by ot-text-unicode's transform or compose of the two edits (which json1
 * itself calls; text-window.ts computes them on the part of a long edit they change), and,
 * for a transform, every removal's value replaced by `true` as json1 writes them. Only the
 * numbering of move slots (which pick pairs with which drop) may differ from json1's, which
 * renumbers them as it rebuilds. Everything else, and an edit that would become a no-op
 * (json1 prunes those), goes to json1 unchanged; test/unit/history-ops.test.ts checks the
 * two agree.
 */
import type { JSONOp, JSONOpComponent, JSONOpList } from 'ot-json1';
import * as textUnicode from 'ot-text-unicode';
import type { TextOp } from 'ot-text-unicode';
import { tandemJson1 } from '../ot-types/index.js';
import { composeText, transformText } from './text-window.js';

type Side = 'left' | 'right';

/** The functions json1 itself calls for `es` edits (its registered text-unicode has these). */
const textType = textUnicode.type;

/** ot-text-unicode's `isNoop` (not in its typings): an op without components. */
const isTextNoop = (edit: TextOp): boolean => edit.length === 0;

/** A json1 op that only edits the text at `path`, every key of which is an object key. */
interface TextEdit {
  path: readonly string[];
  edit: TextOp;
}

/** What an op holds at a path: its text edit there, and where that sits in the op's lists. */
interface Found {
  /** The edit at the path (undefined: the op holds nothing at or above it). */
  edit: TextOp | undefined;
  /** Outermost first: each list on the way down and the index of the next step in it. */
  spine: Array<{ list: JSONOpList; index: number }>;
}

function isComponent(item: JSONOpList[number] | undefined): item is JSONOpComponent {
  return typeof item === 'object' && item !== null && !Array.isArray(item);
}

/** True for a component that is exactly a text edit (`{es}`), nothing else. */
function isTextOnly(component: JSONOpComponent): boolean {
  for (const key in component) if (key !== 'es') return false;
  return component.es !== undefined;
}

/** `op` as a text edit at object keys, or null. */
function textEditOf(op: JSONOp): TextEdit | null {
  if (op === null) return null;
  const path: string[] = [];
  for (let i = 0; i < op.length; i++) {
    const item = op[i];
    if (typeof item === 'string') path.push(item);
    else if (isComponent(item) && i === op.length - 1 && isTextOnly(item)) return { path, edit: item.es! };
    else return null;
  }
  return null;
}

/**
 * Looks for `path` in a normalized json1 op. null when the op holds something on the way
 * down (a component above the string, or anything but a text edit at it): no fast path.
 */
function find(op: JSONOp, path: readonly string[]): Found | null {
  const spine: Found['spine'] = [];
  if (op === null) return { edit: undefined, spine };
  let list: JSONOpList = op;
  let i = 0;
  let depth = 0;
  for (;;) {
    // Keys first: a straight descent.
    for (; i < list.length; i++) {
      const key = list[i];
      if (typeof key !== 'string' && typeof key !== 'number') break;
      // The op goes elsewhere (or below a string, which no valid op does: leave it to json1).
      if (depth === path.length) return null;
      if (key !== path[depth]) return { edit: undefined, spine };
      depth++;
    }
    const here = list[i];
    if (isComponent(here)) {
      if (depth < path.length || !isTextOnly(here) || i !== list.length - 1) return null;
      spine.push({ list, index: i });
      return { edit: here.es, spine };
    }
    if (depth === path.length) return here === undefined ? { edit: undefined, spine } : null;
    // Branches, sorted by key: follow the one for the next key, if any.
    let branch = -1;
    for (let j = i; j < list.length; j++) {
      const child = list[j];
      if (Array.isArray(child) && child[0] === path[depth]) {
        branch = j;
        break;
      }
    }
    if (branch < 0) return { edit: undefined, spine };
    spine.push({ list, index: branch });
    list = list[branch] as JSONOpList;
    i = 0;
  }
}

/** `op` with its text edit (at the end of `spine`) replaced; the lists on the way are copied. */
function replaceEdit(spine: Found['spine'], edit: TextOp): JSONOp {
  let replaced: JSONOpList[number] = { es: edit };
  for (let s = spine.length - 1; s >= 0; s--) {
    const { list, index } = spine[s]!;
    const copy = list.slice();
    copy[index] = replaced;
    replaced = copy;
  }
  return replaced as JSONOpList;
}

/**
 * `list` with every removal's value replaced by `true`, as json1's transform writes the
 * removals of the op it transforms (the value is only known to hold before the other op).
 * Lists without such a removal are returned as they are.
 */
function bareRemovals(list: JSONOpList): JSONOpList {
  let copy: JSONOpList | null = null;
  for (let i = 0; i < list.length; i++) {
    const item = list[i]!;
    let next = item;
    if (Array.isArray(item)) next = bareRemovals(item);
    else if (isComponent(item) && item.r !== undefined && item.r !== true) next = { ...item, r: true };
    if (next === item) continue;
    copy ??= list.slice();
    copy[i] = next;
  }
  return copy ?? list;
}

/** `op` transformed past a concurrent text edit; undefined when json1 must decide. */
function pastText(op: JSONOp, text: TextEdit, side: Side): JSONOp | undefined {
  const found = find(op, text.path);
  if (!found) return undefined;
  if (op === null) return op;
  if (found.edit === undefined) return bareRemovals(op);
  const edit = transformText(found.edit, text.edit, side);
  if (isTextNoop(edit)) return undefined;
  // Removals sit off the text edit's path (find() saw to that): strip them after the swap.
  return bareRemovals(replaceEdit(found.spine, edit) as JSONOpList);
}

/** A text edit transformed past a concurrent `other`; undefined when json1 must decide. */
function textPast(op: JSONOp, text: TextEdit, other: JSONOp, side: Side): JSONOp | undefined {
  const found = find(other, text.path);
  if (!found) return undefined;
  if (found.edit === undefined) return op;
  const edit = textType.transform(text.edit, found.edit, side);
  return isTextNoop(edit) ? undefined : [...text.path, { es: edit }];
}

/** json1's transform of `op` past the concurrent `other` (`side` as in json1). */
export function transform(op: JSONOp, other: JSONOp, side: Side): JSONOp {
  try {
    const otherText = textEditOf(other);
    const fast = otherText ? pastText(op, otherText, side) : undefined;
    if (fast !== undefined) return fast;
    const opText = textEditOf(op);
    const moved = opText ? textPast(op, opText, other, side) : undefined;
    if (moved !== undefined) return moved;
  } catch {
    // ot-text-unicode refused the edits: json1 reports it as it would anyway.
  }
  return tandemJson1.transform(op, other, side);
}

/** json1's compose: `first`, then `second`. */
export function compose(first: JSONOp, second: JSONOp): JSONOp {
  try {
    const firstText = textEditOf(first);
    if (firstText) {
      const found = find(second, firstText.path);
      if (found?.edit !== undefined) {
        const edit = composeText(firstText.edit, found.edit);
        if (!isTextNoop(edit)) return replaceEdit(found.spine, edit);
      }
    }
    const secondText = textEditOf(second);
    if (secondText) {
      const found = find(first, secondText.path);
      if (found?.edit !== undefined) {
        const edit = textType.compose(found.edit, secondText.edit);
        if (!isTextNoop(edit)) return replaceEdit(found.spine, edit);
      }
    }
  } catch {
    // As in transform: json1 decides, and reports.
  }
  return tandemJson1.compose(first, second);
}
