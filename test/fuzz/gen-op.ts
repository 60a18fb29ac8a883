/**
 * Seeded random json1 op generator for the fuzz tests.
 *
 * Why not ot-json1's own `test/genOp.js`: it draws from `ot-fuzzer`'s global Math.random-based
 * state (seeded only through env `SEED`, one stream per process), needs a `./genTextOp` that
 * is not shipped, never produces non-BMP text, never bounds the document, and never aims
 * several clients at the same place. This one:
 * - is deterministic for a seed (mulberry32; no Math.random), one stream per caller;
 * - produces every op from the caller's current document and checks it twice: it keeps its
 *   own model of the op's effect (mutating a clone) and asserts that `tandemJson1.apply`
 *   gives exactly that. Checking with apply alone is not enough: json1's apply silently
 *   truncates a text delete past the end and "adds" a number to a string by concatenation;
 * - covers inserts/removes/replaces at object keys and list indexes, moves (within a list,
 *   into lists, across subtrees), text inserts/deletes in code points (with emoji and other
 *   astral characters), number adds, and multi-part ops built with json1's compose;
 * - takes an optional `focus` path shared by several clients in one round, so their ops
 *   conflict on purpose: the same new key inserted by several clients, edits inside a
 *   subtree another removes or replaces, moves into a place another removes;
 * - keeps documents bounded (node count, depth, string length) by preferring removes and
 *   text deletes once a document is big.
 */
import { isDeepStrictEqual } from 'node:util';
import type { JSONOp, Path } from 'ot-json1';
import { ops, tandemJson1 } from '../../ot-types/index.js';
import type { Rng } from './rng.js';

export { Rng, shuffled } from './rng.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface GenLimits {
  /** Above this many nodes (values, counting containers) the generator prefers removing. */
  maxNodes: number;
  /** Deepest container nesting (root is depth 0). */
  maxDepth: number;
  /** Longest string, in code points, before text deletes are preferred. */
  maxText: number;
}

export const DEFAULT_GEN_LIMITS: Readonly<GenLimits> = Object.freeze({ maxNodes: 60, maxDepth: 4, maxText: 40 });

export interface GenOptions {
  limits?: Partial<GenLimits>;
  /**
   * A path several clients aim at in the same round. When it exists in this client's
   * document, most ops touch it: remove/replace it, edit inside it, insert a shared "hot"
   * key into it, move something into it or move it away.
   */
  focus?: Path | null;
  /** Probability of a multi-part op (2–3 parts joined with compose). Default 0.15. */
  composeChance?: number;
}

export interface GeneratedOp {
  op: JSONOp;
  /** What the op does, e.g. 'insert' or 'compose(move,text-insert)'; for failure reports. */
  kind: string;
  /** The document after the op, from the generator's own model (equals apply's result). */
  after: Json;
}

/** A few object keys every client draws new keys from, so concurrent inserts collide. */
export const HOT_KEYS: readonly string[] = ['k0', 'k1', 'k2', 'a', 'b'];

/** Text pieces, several outside the BMP (two UTF-16 units, one code point each). */
const TEXT_PIECES: readonly string[] = ['a', 'b', 'xy', ' ', 'é', '中', '🦊', '🌍', '𝄞', '👍🏽', 'q🦊z', 'hello', '\n'];

const WORDS: readonly string[] = ['red', 'blue', 'ok', '', 'ünï', '🎉', 'x🧪y'];

interface NodeInfo {
  path: Path;
  value: Json;
  /** Depth of the node itself: root 0, its children 1… */
  depth: number;
}

function isContainer(v: Json): v is Json[] | { [key: string]: Json } {
  return typeof v === 'object' && v !== null;
}

/** Every node of the document with its path, root first. */
function nodes(doc: Json): NodeInfo[] {
  const out: NodeInfo[] = [];
  const walk = (value: Json, path: Path, depth: number) => {
    out.push({ path, value, depth });
    if (Array.isArray(value)) value.forEach((child, i) => walk(child, [...path, i], depth + 1));
    else if (isContainer(value)) for (const [k, child] of Object.entries(value)) walk(child, [...path, k], depth + 1);
  };
  walk(doc, [], 0);
  return out;
}

/** Height of a value: 0 for scalars, 1 + tallest child for containers. */
function height(v: Json): number {
  if (!isContainer(v)) return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce<number>((h, c) => Math.max(h, height(c)), 0);
}

export function countNodes(v: Json): number {
  if (!isContainer(v)) return 1;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce<number>((n, c) => n + countNodes(c), 0);
}

function codePoints(s: string): string[] {
  return Array.from(s);
}

function getAt(doc: Json, path: Path): Json | undefined {
  let cur: Json | undefined = doc;
  for (const key of path) {
    if (cur === undefined || !isContainer(cur)) return undefined;
    cur = Array.isArray(cur) ? (typeof key === 'number' ? cur[key] : undefined) : (cur as Record<string, Json>)[key as string];
  }
  return cur;
}

function isPrefix(prefix: Path, path: Path): boolean {
  return prefix.length <= path.length && prefix.every((k, i) => path[i] === k);
}

/** Mutating model operations on a cloned document (the generator's own idea of the effect). */
function modelRemove(doc: Json, path: Path): Json {
  const parent = getAt(doc, path.slice(0, -1)) as Json[] | Record<string, Json>;
  const key = path[path.length - 1]!;
  if (Array.isArray(parent)) return parent.splice(key as number, 1)[0]!;
  const value = parent[key as string]!;
  delete parent[key as string];
  return value;
}

function modelInsert(doc: Json, path: Path, value: Json): void {
  const parent = getAt(doc, path.slice(0, -1)) as Json[] | Record<string, Json>;
  const key = path[path.length - 1]!;
  if (Array.isArray(parent)) parent.splice(key as number, 0, value);
  else parent[key as string] = value;
}

function modelSet(doc: Json, path: Path, value: Json): void {
  const parent = getAt(doc, path.slice(0, -1)) as Json[] | Record<string, Json>;
  const key = path[path.length - 1]!;
  if (Array.isArray(parent)) parent[key as number] = value;
  else parent[key as string] = value;
}

export class OpGenerator {
  readonly limits: GenLimits;

  constructor(
    readonly rng: Rng,
    limits: Partial<GenLimits> = {},
  ) {
    this.limits = { ...DEFAULT_GEN_LIMITS, ...limits };
  }

  /** A random JSON value whose height is at most `maxHeight`. */
  randomValue(maxHeight: number): Json {
    const r = this.rng;
    const kind = r.weighted({ int: 3, zero: 1, text: 4, bool: 1, nul: 1, list: maxHeight > 0 ? 2 : 0, obj: maxHeight > 0 ? 2 : 0 });
    switch (kind) {
      case 'int':
        return r.range(-50, 50);
      case 'zero':
        return 0;
      case 'text':
        return this.randomText(r.range(0, 3));
      case 'bool':
        return r.chance(0.5);
      case 'nul':
        return null;
      case 'list':
        return Array.from({ length: r.range(0, 3) }, () => this.randomValue(maxHeight - 1));
      case 'obj': {
        const obj: Record<string, Json> = {};
        const n = r.range(0, 2);
        for (let i = 0; i < n; i++) obj[r.chance(0.5) ? r.pick(HOT_KEYS) : r.pick(WORDS) || 'e'] = this.randomValue(maxHeight - 1);
        return obj;
      }
    }
  }

  randomText(pieces: number): string {
    let s = '';
    for (let i = 0; i < pieces; i++) s += this.rng.chance(0.3) ? this.rng.pick(WORDS) : this.rng.pick(TEXT_PIECES);
    return s;
  }

  /** A key absent from `obj`: usually a hot key (so concurrent inserts collide), else a fresh one. */
  newKey(obj: Record<string, Json>): string {
    const free = HOT_KEYS.filter((k) => !(k in obj));
    if (free.length > 0 && this.rng.chance(0.8)) return this.rng.pick(free);
    for (;;) {
      const key = `${this.rng.pick(WORDS) || 'w'}${this.rng.int(100)}`;
      if (!(key in obj)) return key;
    }
  }

  /**
   * Generates one op valid on `doc` (the root must be an object; it is never removed).
   * Throws if json1's apply disagrees with the generator's model — a generator bug or a json1
   * apply bug, reported with the op and document.
   */
  generate(doc: Json, options: GenOptions = {}): GeneratedOp {
    if (!isContainer(doc) || Array.isArray(doc)) throw new Error(`OpGenerator needs an object at the root, got ${JSON.stringify(doc)}`);
    const composeChance = options.composeChance ?? 0.15;
    const parts = this.rng.chance(composeChance) ? this.rng.range(2, 3) : 1;
    let current: Json = structuredClone(doc);
    let op: JSONOp = null;
    const kinds: string[] = [];
    for (let i = 0; i < parts; i++) {
      const part = this.generatePart(current, options.focus ?? null);
      kinds.push(part.kind);
      op = i === 0 ? part.op : ops.compose(op, part.op);
      current = part.after;
    }
    const kind = parts === 1 ? kinds[0]! : `compose(${kinds.join(',')})`;
    // Each part was checked on its own; a composed op is checked as a whole too (compose bugs).
    if (parts > 1) checkAgainstApply(doc, op, current, kind);
    return { op, kind, after: current };
  }

  private generatePart(doc: Json, focus: Path | null): GeneratedOp {
    for (let attempt = 0; attempt < 20; attempt++) {
      const focused = focus !== null && focus.length > 0 && getAt(doc, focus) !== undefined && this.rng.chance(0.7);
      const result = focused ? this.focusedPart(doc, focus) : this.randomPart(doc);
      if (result) {
        checkAgainstApply(doc, result.op, result.after, result.kind);
        return result;
      }
    }
    // Always possible: the root is an object with room for a new key.
    return this.insertAt(doc, [], 0);
  }

  private randomPart(doc: Json): GeneratedOp | null {
    const all = nodes(doc);
    const size = countNodes(doc);
    const big = size > this.limits.maxNodes;
    const r = this.rng;
    const kind = r.weighted({
      insert: big ? 0 : 3,
      remove: big ? 6 : 1.5,
      replace: 1,
      move: 3,
      text: 4,
      add: 1,
    });
    switch (kind) {
      case 'insert': {
        const containers = all.filter((n) => isContainer(n.value) && n.depth < this.limits.maxDepth);
        const c = r.pick(containers);
        return this.insertAt(doc, c.path, c.depth);
      }
      case 'remove': {
        const candidates = all.filter((n) => n.path.length > 0);
        if (candidates.length === 0) return null;
        // When big, remove large subtrees first.
        const n = big
          ? candidates.reduce((a, b) => (r.chance(0.5) && countNodes(b.value) > countNodes(a.value) ? b : a))
          : r.pick(candidates);
        return this.removeAt(doc, n.path);
      }
      case 'replace': {
        const candidates = all.filter((n) => n.path.length > 0);
        if (candidates.length === 0) return null;
        const n = r.pick(candidates);
        return this.replaceAt(doc, n.path, n.depth);
      }
      case 'move': {
        const candidates = all.filter((n) => n.path.length > 0);
        if (candidates.length === 0) return null;
        return this.moveFrom(doc, r.pick(candidates).path, null);
      }
      case 'text': {
        const strings = all.filter((n) => typeof n.value === 'string');
        if (strings.length === 0) return null;
        return this.textEdit(doc, r.pick(strings).path);
      }
      case 'add': {
        const numbers = all.filter((n) => typeof n.value === 'number');
        if (numbers.length === 0) return null;
        return this.addAt(doc, r.pick(numbers).path);
      }
    }
  }

  /** Ops aimed at `focus`, the same place other clients aim at in this round. */
  private focusedPart(doc: Json, focus: Path): GeneratedOp | null {
    const r = this.rng;
    const target = getAt(doc, focus)!;
    const depth = focus.length;
    const inside = nodes(target).map((n) => ({ ...n, path: [...focus, ...n.path], depth: depth + n.depth }));
    const kind = r.weighted({
      removeFocus: 2,
      replaceFocus: 1,
      editInside: 4,
      insertHot: isContainer(target) && depth < this.limits.maxDepth ? 4 : 0,
      moveInto: isContainer(target) && depth < this.limits.maxDepth ? 3 : 0,
      moveAway: 1.5,
    });
    switch (kind) {
      case 'removeFocus':
        return this.removeAt(doc, focus);
      case 'replaceFocus':
        return this.replaceAt(doc, focus, depth);
      case 'insertHot':
        return this.insertAt(doc, focus, depth);
      case 'moveInto': {
        // Something from outside the focus (if possible) dropped into it.
        const outside = nodes(doc).filter((n) => n.path.length > 0 && !isPrefix(n.path, focus) && !isPrefix(focus, n.path));
        if (outside.length === 0) return null;
        return this.moveFrom(doc, r.pick(outside).path, focus);
      }
      case 'moveAway':
        return this.moveFrom(doc, focus, null);
      case 'editInside': {
        const n = r.pick(inside);
        if (typeof n.value === 'string') return this.textEdit(doc, n.path);
        if (typeof n.value === 'number') return this.addAt(doc, n.path);
        if (isContainer(n.value) && n.depth < this.limits.maxDepth && r.chance(0.6)) return this.insertAt(doc, n.path, n.depth);
        if (n.path.length > focus.length) return r.chance(0.5) ? this.removeAt(doc, n.path) : this.replaceAt(doc, n.path, n.depth);
        return null;
      }
    }
  }

  /** Inserts a new value into the container at `path` (whose depth is `depth`). */
  private insertAt(doc: Json, path: Path, depth: number): GeneratedOp {
    const after = structuredClone(doc);
    const container = getAt(after, path) as Json[] | Record<string, Json>;
    const key: string | number = Array.isArray(container) ? this.rng.range(0, container.length) : this.newKey(container);
    const value = this.randomValue(Math.max(0, this.limits.maxDepth - depth - 1));
    const at = [...path, key];
    modelInsert(after, at, structuredClone(value));
    return { op: ops.insert(at, value), kind: 'insert', after };
  }

  private removeAt(doc: Json, path: Path): GeneratedOp {
    const after = structuredClone(doc);
    modelRemove(after, path);
    return { op: ops.remove(path), kind: 'remove', after };
  }

  private replaceAt(doc: Json, path: Path, depth: number): GeneratedOp {
    const after = structuredClone(doc);
    const value = this.randomValue(Math.max(0, this.limits.maxDepth - depth));
    modelSet(after, path, structuredClone(value));
    return { op: ops.replace(path, value), kind: 'replace', after };
  }

  /**
   * Moves the value at `from` to a new place. json1 reads the destination path in the
   * document after the pick, so the destination is chosen in that document. With `into`,
   * the destination container is `into` (a path in the document before the pick, translated).
   */
  private moveFrom(doc: Json, from: Path, into: Path | null): GeneratedOp | null {
    const after = structuredClone(doc);
    const moved = modelRemove(after, from);
    const h = height(moved);
    let containers = nodes(after).filter((n) => isContainer(n.value) && n.depth + 1 + h <= this.limits.maxDepth);
    if (into !== null) {
      const translated = translateAfterRemove(into, from);
      if (translated === null) return null;
      containers = containers.filter((n) => isDeepStrictEqual(n.path, translated));
    }
    if (containers.length === 0) return null;
    const c = this.rng.pick(containers);
    const container = c.value as Json[] | Record<string, Json>;
    const key: string | number = Array.isArray(container) ? this.rng.range(0, container.length) : this.newKey(container);
    const to = [...c.path, key];
    modelInsert(after, to, moved);
    // The source's parent is never shifted by removing the source itself.
    const kind = isDeepStrictEqual(c.path, from.slice(0, -1)) ? 'move-within' : 'move';
    return { op: ops.move(from, to), kind, after };
  }

  private textEdit(doc: Json, path: Path): GeneratedOp {
    const after = structuredClone(doc);
    const chars = codePoints(getAt(after, path) as string);
    const r = this.rng;
    const deleting = chars.length > 0 && (chars.length > this.limits.maxText ? r.chance(0.85) : r.chance(0.35));
    if (deleting) {
      const offset = r.int(chars.length);
      const len = r.range(1, Math.min(chars.length - offset, 6));
      const removed = chars.splice(offset, len).join('');
      modelSet(after, path, chars.join(''));
      // Half the time name the deleted text (invertible form), half the time just its length.
      return { op: ops.textDelete(path, offset, r.chance(0.5) ? removed : len), kind: 'text-delete', after };
    }
    const offset = r.range(0, chars.length);
    const text = this.randomText(r.range(1, 2)) || '+';
    chars.splice(offset, 0, text);
    modelSet(after, path, chars.join(''));
    return { op: ops.textInsert(path, offset, text), kind: 'text-insert', after };
  }

  private addAt(doc: Json, path: Path): GeneratedOp {
    const after = structuredClone(doc);
    // Integers only: float sums in different orders would differ in the last bit.
    const delta = this.rng.range(-9, 9) || 1;
    modelSet(after, path, (getAt(after, path) as number) + delta);
    return { op: ops.add(path, delta), kind: 'add', after };
  }
}

/**
 * Where a container at `path` (in the document before a pick at `removed`) is after the pick:
 * list indexes after the removed item shift down by one. Null when it was inside the removed value.
 */
function translateAfterRemove(path: Path, removed: Path): Path | null {
  if (isPrefix(removed, path)) return null;
  const out = [...path];
  const last = removed.length - 1;
  if (
    path.length > last &&
    isDeepStrictEqual(path.slice(0, last), removed.slice(0, last)) &&
    typeof path[last] === 'number' &&
    typeof removed[last] === 'number' &&
    (path[last] as number) > (removed[last] as number)
  ) {
    out[last] = (path[last] as number) - 1;
  }
  return out;
}

/** Asserts that json1's apply turns `before` into exactly `expected` with `op`. */
export function checkAgainstApply(before: Json, op: JSONOp, expected: Json, kind: string): void {
  let actual: Json;
  try {
    actual = tandemJson1.apply(structuredClone(before), op) as Json;
  } catch (err) {
    throw new Error(
      `generated ${kind} op does not apply: ${(err as Error).message}\n  doc: ${JSON.stringify(before)}\n  op:  ${JSON.stringify(op)}`,
    );
  }
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(
      `generated ${kind} op applies differently from the generator's model\n  doc: ${JSON.stringify(before)}\n  op:  ${JSON.stringify(op)}\n` +
        `  json1:    ${JSON.stringify(actual)}\n  expected: ${JSON.stringify(expected)}`,
    );
  }
}

/** The document every fuzz run starts from: text with astral characters, lists, nested objects. */
export function initialDoc(rng: Rng): Json {
  const gen = new OpGenerator(rng);
  return {
    title: 'Tandem 🦊 notes',
    body: 'The quick 🌍 fox𝄞 jumps',
    count: 0,
    items: [1, 'two 🎉', { x: 3, note: 'é' }, [4, 5]],
    meta: { tags: ['a', 'b'], owner: { name: 'ann', n: 7 } },
    extra: gen.randomValue(2),
  };
}

/**
 * A place for several clients to aim at in one round: a random non-root node, usually a
 * container (so inserts of the same new key and moves into it are possible). Null when the
 * document is empty.
 */
export function pickFocus(rng: Rng, doc: Json): Path | null {
  const candidates = nodes(doc).filter((n) => n.path.length > 0);
  if (candidates.length === 0) return null;
  const containers = candidates.filter((n) => isContainer(n.value));
  return rng.pick(containers.length > 0 && rng.chance(0.7) ? containers : candidates).path;
}
