/**
 * Re-expressing a stranded outbox (pure helpers for DocHandle).
 *
 * A client offline for longer than the server keeps its op log (OPLOG_RETENTION, or a store
 * restored from a backup) holds ops written against a version the server can no longer
 * transform from. It still knows the document as it was at that version (its base snapshot,
 * which the outbox keeps), and it can fetch the document as it is now. The difference between
 * the two, written as one json1 op, stands in for the history the server lost: the pending ops
 * are transformed past it exactly as the server would have transformed them past the real
 * ops. Text differences are text edits (a character diff, counted in code points as
 * ot-text-unicode counts), so text typed offline lands where it was typed even if others
 * edited the same string; list differences keep the common head and tail items, so items
 * inserted offline keep their place among others'; numbers by adding the difference, so
 * counters add up; objects differ key by key.
 */
import fastDiff from 'fast-diff';
import * as json1 from 'ot-json1';
import type { Doc as JsonValue, JSONOp, Path } from 'ot-json1';
import { jsonEqual, type TransformingType } from './rebase.js';

type JsonObject = { [key: string]: JsonValue };

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Common head and tail lengths of two sequences (the tail never overlaps the head). */
function commonEnds<T>(a: readonly T[], b: readonly T[], same: (x: T, y: T) => boolean): { head: number; tail: number } {
  let head = 0;
  while (head < a.length && head < b.length && same(a[head]!, b[head]!)) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && same(a[a.length - 1 - tail]!, b[b.length - 1 - tail]!)) tail++;
  return { head, tail };
}

function compose(ops: readonly JSONOp[]): JSONOp {
  let out: JSONOp = null;
  for (const op of ops) out = json1.type.compose(out, op);
  return out;
}

/** Code points in `text`: ot-text-unicode counts positions and deletions in them. */
function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

function textDiff(path: Path, from: string, to: string): JSONOp {
  // fast-diff (Myers, with semantic cleanup) never splits a surrogate pair.
  const textOp: unknown[] = [];
  for (const [kind, text] of fastDiff(from, to, undefined, true)) {
    if (kind === fastDiff.EQUAL) textOp.push(codePoints(text));
    else if (kind === fastDiff.DELETE) textOp.push({ d: codePoints(text) });
    else textOp.push(text);
  }
  // A trailing skip is implied.
  if (typeof textOp[textOp.length - 1] === 'number') textOp.pop();
  return json1.editOp(path, 'text-unicode', textOp);
}

function listDiff(path: Path, from: readonly JsonValue[], to: readonly JsonValue[]): JSONOp {
  const { head, tail } = commonEnds(from, to, jsonEqual);
  const ops: JSONOp[] = [];
  const middleFrom = from.length - head - tail;
  const middleTo = to.length - head - tail;
  // Items changed in place (same count in the middle): edit each, so edits inside survive.
  if (middleFrom === middleTo) {
    for (let i = head; i < head + middleFrom; i++) ops.push(diffAt([...path, i], from[i], to[i]));
    return compose(ops);
  }
  // Removals from the last, then insertions from the first: each index is right when applied.
  for (let i = head + middleFrom - 1; i >= head; i--) ops.push(json1.removeOp([...path, i], true));
  for (let i = head; i < head + middleTo; i++) ops.push(json1.insertOp([...path, i], to[i]!));
  return compose(ops);
}

function diffAt(path: Path, from: JsonValue | undefined, to: JsonValue | undefined): JSONOp {
  if (jsonEqual(from, to)) return null;
  if (from === undefined) return json1.insertOp(path, to!);
  if (to === undefined) return json1.removeOp(path, true);
  if (typeof from === 'string' && typeof to === 'string') return textDiff(path, from, to);
  // A number that changed is an add, so offline adds to a counter add up with others'.
  if (typeof from === 'number' && typeof to === 'number' && Number.isFinite(to - from)) return json1.editOp(path, 'number', to - from);
  if (Array.isArray(from) && Array.isArray(to)) return listDiff(path, from, to);
  if (isObject(from) && isObject(to)) {
    const keys = new Set([...Object.keys(from), ...Object.keys(to)]);
    return compose([...keys].map((key) => diffAt([...path, key], from[key], to[key])));
  }
  return json1.replaceOp(path, true, to);
}

/** A json1 op that turns `from` into `to` (see the module comment for its shape). */
export function diffOp(from: JsonValue | undefined, to: JsonValue | undefined): JSONOp {
  return diffAt([], from, to);
}

/**
 * Components of a json1 op that put something in (inserts, edits). Removals are not counted:
 * one dropped because others removed the same thing meanwhile did what it meant to.
 */
function changeCount(op: JSONOp): number {
  let n = 0;
  const stack: unknown[] = [op];
  while (stack.length > 0) {
    const item = stack.pop();
    if (Array.isArray(item)) stack.push(...item);
    else if (typeof item === 'object' && item !== null) {
      for (const key of ['i', 'es', 'ena', 'e', 'et']) if (key in item) n++;
    }
  }
  return n;
}

/** One queued op re-expressed: null when nothing of it survives; `partial` when some of it did not. */
export interface Reexpressed {
  op: JSONOp | null;
  partial: boolean;
}

/**
 * `queue` (ops made in order on `base`) re-expressed against `current`: each op transformed
 * past what changed since `base`, as the server transforms an op past the ops committed
 * before it. Parts of an op whose target was removed or replaced meanwhile are dropped
 * (json1's rule); the result says so.
 */
export function reexpressQueue(
  type: TransformingType,
  base: JsonValue | undefined,
  current: JsonValue | undefined,
  queue: readonly JSONOp[],
): Reexpressed[] {
  let missed: JSONOp = diffOp(base, current);
  return queue.map((op) => {
    const moved = type.transform(op, missed, 'left');
    missed = type.transform(missed, op, 'right');
    const empty = moved === null || (Array.isArray(moved) && moved.length === 0);
    return { op: empty ? null : moved, partial: !empty && changeCount(moved) < changeCount(op) };
  });
}
