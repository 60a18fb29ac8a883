/**
 * How many bytes a json1 op adds to a document's JSON, computed from the op and the parts of
 * the document it touches, never by re-encoding the whole document.
 *
 * It walks the op exactly as ot-json1 1.0's `apply` does (pick phase, then drop phase; same
 * copy-on-write of the containers on the op's paths, so the work is that of applying the op)
 * and adds up, for each change, the bytes JSON.stringify gives it:
 * - a removed value: its own bytes (what is left of it once values moved out of it are
 *   gone), its key and colon in an object, and one comma unless it was the only entry;
 * - an inserted value: the same, counted from the op's literal;
 * - a moved value: only its key, colon and comma at both ends. Its bytes leave and come back
 *   unchanged, so they are never counted (a small op may move a large subtree);
 * - a text edit: the UTF-8, JSON-escaped bytes of the inserted and deleted characters;
 * - other edits (number add, other subtypes): the value's bytes after minus before.
 * Keep in step with ot-json1's apply when upgrading it (the test compares this with
 * re-encoding on thousands of random ops).
 */
import * as json1 from 'ot-json1';
import type { JSONOp } from 'ot-json1';
import { countCodePoints, isSurrogateFree, sliceText, surrogateFreeSteps } from '../../ot-types/text-positions.js';

/** UTF-8 bytes of `JSON.stringify(value)` (0 for undefined: a document that does not exist). */
export function jsonBytes(value: unknown): number {
  const text = JSON.stringify(value);
  return text === undefined ? 0 : Buffer.byteLength(text, 'utf8');
}

type Container = Record<string, unknown> | unknown[];
type Key = string | number;
/** One json1 op component (the object in a descent). */
type Component = { p?: number; r?: unknown; d?: number; i?: unknown; es?: unknown; ena?: unknown; e?: unknown; et?: string };

/** The op does not apply to the document (json1 would throw, or first spin: see textEditBytes). */
export class OpDoesNotApply extends Error {}

function fail(message: string): never {
  throw new OpDoesNotApply(message);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isValidKey = (container: unknown, key: Key): boolean =>
  container != null && (typeof key === 'number' ? Array.isArray(container) : typeof container === 'object');
const childOf = (container: unknown, key: Key): unknown =>
  isValidKey(container, key) ? (container as Record<Key, unknown>)[key] : undefined;
const shallowClone = (value: unknown): unknown =>
  Array.isArray(value) ? value.slice() : typeof value === 'object' && value !== null ? Object.assign({}, value) : value;
const hasPick = (c: Component): boolean => c.p != null || c.r !== undefined;

/** Entries in a container, counted only up to 2 (enough to know whether a comma is involved). */
function entriesUpTo2(container: Container): number {
  if (Array.isArray(container)) return Math.min(container.length, 2);
  let n = 0;
  for (const _ in container) if (++n === 2) break;
  return n;
}

/** Bytes an entry costs its container besides its value: `"key":` in an object, and its comma. */
function entryOverhead(container: Container, key: Key, commaIfAtLeast: number): number {
  const keyBytes = typeof key === 'number' ? 0 : jsonBytes(key) + 1;
  return keyBytes + (entriesUpTo2(container) >= commaIfAtLeast ? 1 : 0);
}

/** JSON-escaped UTF-8 bytes of a piece of text (without the quotes). */
const textBytes = (text: string): number => jsonBytes(text) - 2;

/**
 * UTF-16 index `n` code points after `from`, counted as unicount's uniToStrPos counts them
 * (a surrogate takes its neighbour along), or null when the text ends first. On a text known
 * to be surrogate-free that is index arithmetic instead of a walk over the `n` units.
 */
function advanceCodePoints(text: string, from: number, n: number, surrogateFree: boolean): number | null {
  if (surrogateFree) {
    const end = from + surrogateFreeSteps(n);
    return end <= text.length ? end : null;
  }
  let at = from;
  for (let k = 0; k < n; k++) {
    if (at >= text.length) return null;
    const unit = text.charCodeAt(at);
    at += unit >= 0xd800 && unit <= 0xdfff ? 2 : 1;
  }
  return at <= text.length ? at : null;
}

/**
 * Bytes a text-unicode edit adds to a string, walking the op as ot-text-unicode applies it.
 * A skip or delete past the end of the string does not apply: ot-text-unicode would first
 * count that many code points one by one (a 10-byte op skipping 1e15 froze the server) and
 * then throw (a skip) or delete what there is (a delete, which no client sends: its own
 * document has the text).
 */
function textEditBytes(before: unknown, edit: unknown, key: string | undefined): number {
  if (typeof before !== 'string' || !Array.isArray(edit)) fail('text edit on a non-string');
  // The snapshot's text is normally the previous apply's result, which the memo knows: then
  // this walk only does arithmetic on offsets and slices the deleted text from its pieces.
  const surrogateFree = isSurrogateFree(before, key);
  let at = 0;
  let delta = 0;
  for (const c of edit as unknown[]) {
    if (typeof c === 'number') {
      at =
        advanceCodePoints(before, at, c, surrogateFree) ??
        fail(`text edit skips past the end of the string (${before.length} UTF-16 units)`);
    } else if (typeof c === 'string') {
      delta += textBytes(c);
    } else {
      const d = (c as { d?: unknown }).d;
      const n = typeof d === 'number' ? d : typeof d === 'string' ? countCodePoints(d) : fail('bad text delete');
      const end =
        advanceCodePoints(before, at, n, surrogateFree) ??
        fail(`text edit deletes past the end of the string (${before.length} UTF-16 units)`);
      // Not before.slice: on the cons string an apply returned, V8 would copy all of it first.
      delta -= textBytes(sliceText(before, at, end));
      at = end;
    }
  }
  return delta;
}

function isTextEdit(c: Component): boolean {
  return c.es !== undefined || c.et === 'text-unicode' || c.et === 'http://sharejs.org/types/text-unicode';
}

/** The edit part of a component, as json1 reads it (`getEditType`/`getEdit`). */
function editOf(c: Component): Component | null {
  if (c.et) return { et: c.et, e: c.e };
  if (c.es) return { es: c.es };
  if (c.ena != null) return { ena: c.ena };
  if (c.e !== undefined) fail('edit without a type');
  return null;
}

class SizeWalk {
  delta = 0;
  private readonly held: unknown[] = [];
  /** Keys from the root to where the drop phase is (only kept when there is a document key). */
  private readonly path: Key[] = [];

  constructor(private readonly docKey: string | undefined) {}

  run(doc: unknown, op: JSONOp): number {
    if (op === null) return 0;
    this.drop(this.pick(doc, op as unknown[]), op as unknown[]);
    return this.delta;
  }

  private pick(subDoc: unknown, descent: unknown[]): unknown {
    const stack: unknown[] = [];
    let i = 0;
    for (; i < descent.length; i++) {
      const d = descent[i];
      if (Array.isArray(d)) break;
      if (typeof d !== 'object') {
        stack.push(subDoc);
        subDoc = childOf(subDoc, d as Key);
      }
    }
    for (let j = descent.length - 1; j >= i; j--) subDoc = this.pick(subDoc, descent[j] as unknown[]);
    for (--i; i >= 0; i--) {
      const d = descent[i];
      if (typeof d !== 'object') {
        const container = stack.pop();
        const key = d as Key;
        if (subDoc === childOf(container, key)) subDoc = container;
        else if (subDoc === undefined) subDoc = this.removeChild(container, key);
        else subDoc = this.replaceChild(container, key, subDoc);
      } else if (hasPick(d as Component)) {
        if (subDoc === undefined) fail('cannot pick up or remove undefined');
        const c = d as Component;
        // A moved value's bytes come back where it is dropped; a removed one's are gone.
        if (c.p != null) this.held[c.p] = subDoc;
        else this.delta -= jsonBytes(subDoc);
        subDoc = undefined;
      }
    }
    return subDoc;
  }

  private removeChild(container: unknown, key: Key): Container {
    if (container == null) fail('missing container');
    if (typeof key === 'number') {
      if (!Array.isArray(container)) fail('not an array');
      this.delta -= entryOverhead(container, key, 2);
      const copy = container.slice();
      copy.splice(key, 1);
      return copy;
    }
    if (!isObject(container)) fail('not an object');
    this.delta -= entryOverhead(container, key, 2);
    const copy = Object.assign({}, container);
    delete copy[key];
    return copy;
  }

  private replaceChild(container: unknown, key: Key, value: unknown): unknown {
    const copy = shallowClone(container) as Record<Key, unknown>;
    copy[key] = value;
    return copy;
  }

  private drop(root: unknown, descent: unknown[]): unknown {
    const depth = this.path.length;
    let subDoc = root;
    let i = 0;
    const rootContainer: Record<Key, unknown> = { root };
    let m = 0;
    let container: Record<Key, unknown> = rootContainer;
    let key: Key = 'root';
    const mut = (): void => {
      for (; m < i; m++) {
        const d = descent[m];
        if (typeof d !== 'object') {
          if (!isValidKey(container, key)) fail('invalid key');
          container = container[key] = shallowClone(container[key]) as Record<Key, unknown>;
          key = d as Key;
        }
      }
    };
    for (; i < descent.length; i++) {
      const d = descent[i];
      if (Array.isArray(d)) {
        const child = this.drop(subDoc, d);
        if (child !== subDoc && child !== undefined) {
          mut();
          subDoc = container[key] = child;
        }
      } else if (typeof d === 'object' && d !== null) {
        const c = d as Component;
        if (c.d != null) {
          mut();
          subDoc = this.insert(container, rootContainer, key, this.held[c.d]);
        } else if (c.i !== undefined) {
          mut();
          this.delta += jsonBytes(c.i);
          subDoc = this.insert(container, rootContainer, key, c.i);
        }
        const edit = editOf(c);
        if (edit) {
          mut();
          if (isTextEdit(edit)) {
            // Nothing reads an edited string again within the op: only its bytes matter.
            const key = this.docKey === undefined ? undefined : `${this.docKey}\u0000${JSON.stringify(this.path)}`;
            this.delta += textEditBytes(subDoc, edit.es ?? edit.e, key);
          } else {
            const after = json1.type.apply(subDoc as json1.Doc, [edit] as unknown as JSONOp);
            this.delta += jsonBytes(after) - jsonBytes(subDoc);
            subDoc = container[key] = after;
          }
        }
      } else {
        subDoc = childOf(subDoc, d as Key);
        if (this.docKey !== undefined) this.path.push(d as Key);
      }
    }
    this.path.length = depth;
    return rootContainer.root;
  }

  private insert(container: Record<Key, unknown>, rootContainer: object, key: Key, value: unknown): unknown {
    if (typeof key === 'number') {
      if (!Array.isArray(container)) fail('cannot use a numeric key for an object');
      if (container.length < key) fail('insert out of bounds');
      this.delta += entryOverhead(container, key, 1);
      container.splice(key, 0, value);
    } else {
      if (!isObject(container)) fail('cannot insert into a missing item');
      if (container[key] !== undefined) fail('insert over an existing value');
      if (container !== rootContainer) this.delta += entryOverhead(container, key, 1);
      container[key] = value;
    }
    return value;
  }
}

/**
 * Bytes `op` adds to the JSON of `doc` (negative when it shrinks it). Throws when the op does
 * not apply to the document (json1's apply would throw too). Cost: that of applying the op,
 * plus encoding what it inserts and removes.
 *
 * `docKey` names the document (collection and id): with it, a long text this op edits is
 * found in the text memo as the result of the previous apply to that document and path, by
 * pointer, and is then the first one json1's apply of the op finds. Without it, documents
 * whose texts have equal lengths may make the memo compare their texts, which V8 does by
 * copying each first (ot-types/surrogate-memo.ts).
 */
export function opSizeDelta(doc: unknown, op: JSONOp, docKey?: string): number {
  return new SizeWalk(docKey).run(doc, op);
}
