/**
 * json1's 'right' transform, made to agree with its 'left' transform of the same pair.
 *
 * ShareDB relies on TP1: the server commits `transform(a, b, 'left')` after `b`, while the
 * client that submitted `a` applies `transform(b, a, 'right')` after `a`; both must reach the
 * same document. With conflicts allowed, ot-json1 1.0 resolves each direction on its own: it
 * finds the first conflict from that direction's point of view, resolves it by adding
 * removals to one op, and repeats. The two directions can meet different conflicts (json1
 * documents that they should not) and then resolve differently: e.g. `a` moves x onto key k
 * and removes u while `b` moves x into a new place inside u and sets k. 'left' sees that b
 * put content into the u that a removes (a's moved x goes with it, k keeps b's value);
 * 'right' sees two drops at k and lets a's win (b's value is dropped). The client that sent
 * `a` ends without k, everyone else with it, at the same version, silently
 * (test/fuzz/pinned-cases.ts).
 *
 * Here the 'right' result is derived from the 'left' direction's own resolution: the
 * conflicts are found and resolved exactly as `transform(other, op, 'left')` does (json1's
 * loop, with json1's resolution rules, reimplemented because json1 does not export them),
 * which turns the pair into `other*` = other + removals R1 and `op*` = op + removals R2 that
 * no longer conflict; the result is R1 followed by `transform(op*, other*, 'right')`. Then
 * other;result = other*;transform(op*, other*, 'right') and op;left-result =
 * op*;transform(other*, op*, 'left'), which json1 makes equal for ops without conflicts.
 */
import * as json1 from 'ot-json1';
import type { JSONOp, JSONOpComponent } from 'ot-json1';
import { readCursor, writeCursor } from 'ot-json1/dist/cursor.js';
import { anyComponent } from './op-components.js';

type Conflict = { type: number; op1: JSONOp; op2: JSONOp };
type TryResult = { ok: true; result: JSONOp } | { ok: false; conflict: Conflict };
/** json1 exports tryTransform on its type object, but its typings omit it. */
const tryTransform = (json1.type as unknown as { tryTransform(a: JSONOp, b: JSONOp, side: 'left' | 'right'): TryResult }).tryTransform;
const { compose, normalize } = json1.type;

/** True when a component edits its value (a text, a number, another subtype). */
const isEdit = (c: JSONOpComponent): boolean => c.es !== undefined || c.ena !== undefined || c.et !== undefined;
const isDrop = (c: JSONOpComponent): boolean => c.d != null || c.i !== undefined;

/** json1's `opThatRemovesDE`: an op removing everything `op` drops, inserts or edits. */
function removalOfDropsAndEdits(op: JSONOp): JSONOp {
  const w = writeCursor();
  readCursor(op).traverse(w, (c, wc) => {
    if (isDrop(c) || isEdit(c)) wc.write('r', true);
  });
  return w.get();
}

/** json1's `resolveConflict(conflict, 'left')`: the removals to add to [left op, right op]. */
function resolveAsLeft({ type, op1, op2 }: Conflict): [JSONOp, JSONOp] {
  switch (type) {
    case json1.type.DROP_COLLISION:
      return [null, removalOfDropsAndEdits(op2)];
    case json1.type.RM_UNEXPECTED_CONTENT:
      return anyComponent(op1, (c) => c.r !== undefined) ? [null, removalOfDropsAndEdits(op2)] : [removalOfDropsAndEdits(op1), null];
    case json1.type.BLACKHOLE:
      return [removalOfDropsAndEdits(op1), removalOfDropsAndEdits(op2)];
    default:
      throw new Error(`unknown json1 conflict type ${type}`);
  }
}

/** True when no component of `op` picks, removes, drops or inserts: it only edits values. */
export function onlyEdits(op: JSONOp): boolean {
  return !anyComponent(op, (c) => c.p != null || c.r !== undefined || isDrop(c));
}

/**
 * `op` transformed past `other` as the 'right' side, agreeing with
 * `transform(other, op, 'left')` (see the file comment). Undefined when, after the left
 * direction's resolution, the right direction still meets a conflict: the caller then uses
 * json1's own resolution.
 */
export function transformRightAgreeingWithLeft(op: JSONOp, other: JSONOp): JSONOp | undefined {
  let left = other;
  let right = op;
  let leftRemovals: JSONOp = null;
  for (;;) {
    const attempt = tryTransform(left, right, 'left');
    if (attempt.ok) break;
    const [r1, r2] = resolveAsLeft(attempt.conflict);
    left = compose(normalize(left), r1);
    right = compose(normalize(right), r2);
    leftRemovals = compose(leftRemovals, r1);
  }
  const attempt = tryTransform(right, left, 'right');
  return attempt.ok ? compose(leftRemovals, attempt.result) : undefined;
}
