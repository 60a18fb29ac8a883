import type { JSONOp, JSONOpComponent } from 'ot-json1';
import { readCursor } from 'ot-json1/dist/cursor.js';

/** True when some component of `op` (at any depth) satisfies `predicate`. */
export function anyComponent(op: JSONOp, predicate: (c: JSONOpComponent) => boolean): boolean {
  if (op === null) return false;
  let found = false;
  readCursor(op).traverse(null, (c) => {
    if (!found && predicate(c)) found = true;
  });
  return found;
}
