import * as json1 from 'ot-json1';
import * as textUnicode from 'ot-text-unicode';
import type { Doc, JSONOp, Path } from 'ot-json1';

/**
 * Typed builders for the json1 edits an application makes. Each returns a json1 op ready
 * for `doc.submitOp`. Text offsets are Unicode code points (ot-text-unicode's unit).
 */
export const ops = {
  /** Inserts `value` at `path` (a new object key, or a list index that shifts later items). */
  insert: (path: Path, value: Doc): JSONOp => json1.insertOp(path, value),
  /** Removes whatever is at `path`. */
  remove: (path: Path): JSONOp => json1.removeOp(path, true),
  /** Replaces the existing value at `path` with `value`. */
  replace: (path: Path, value: Doc): JSONOp => json1.replaceOp(path, true, value),
  /** Moves the value at `from` to `to` (paths as in the document before the op). */
  move: (from: Path, to: Path): JSONOp => json1.moveOp(from, to),
  /** Inserts `text` at code point `offset` of the string at `path`. */
  textInsert: (path: Path, offset: number, text: string): JSONOp => json1.editOp(path, 'text-unicode', textUnicode.insert(offset, text)),
  /** Deletes `lengthOrText` (a code point count, or the deleted text) at `offset`. */
  textDelete: (path: Path, offset: number, lengthOrText: number | string): JSONOp =>
    json1.editOp(path, 'text-unicode', textUnicode.remove(offset, lengthOrText)),
  /** Adds `delta` to the number at `path`. */
  add: (path: Path, delta: number): JSONOp => json1.editOp(path, 'number', delta),
  /** Composes several ops, applied in order, into one op. */
  compose: (...parts: JSONOp[]): JSONOp => parts.reduce<JSONOp>((acc, op) => json1.type.compose(acc, op), null),
};

/** Sets `path` to `value`: a replace when something is there, an insert otherwise. */
export function setOp(path: Path, value: Doc, existed: boolean): JSONOp {
  return existed ? ops.replace(path, value) : ops.insert(path, value);
}
