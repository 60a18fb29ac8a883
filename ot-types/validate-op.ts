import * as json1 from 'ot-json1';

const utf8 = new TextEncoder();

export interface OpLimits {
  /** Largest op (JSON-encoded, UTF-8 bytes) accepted. */
  maxOpBytes: number;
  /** Deepest nesting of arrays/objects inside an op or a created document. */
  maxDepth: number;
}

export const DEFAULT_OP_LIMITS: Readonly<OpLimits> = Object.freeze({ maxOpBytes: 256 * 1024, maxDepth: 64 });

export type OpProblem = { kind: 'too-large' | 'too-deep' | 'invalid'; message: string };

/**
 * Depth of nested arrays/objects, stopping once `limit` is passed. Iterative, so hostile
 * input nested thousands of levels deep cannot overflow the stack.
 */
export function jsonDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > deepest) deepest = depth;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return deepest;
}

/**
 * Whether JSON text nests arrays/objects deeper than `limit`, found by scanning the text
 * before parsing it: JSON.parse accepts any depth, but the recursive code that later walks
 * or re-encodes the value (ShareDB, json1, JSON.stringify) overflows the stack.
 */
export function jsonTextNestsDeeper(text: string, limit: number): boolean {
  // Each level needs an opening and a closing bracket.
  if (text.length <= limit * 2) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > limit) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/** UTF-8 bytes of `text`. TextEncoder, not Buffer: this module also runs in browsers. */
const encodedBytes = (text: string): number => utf8.encode(text).length;

/**
 * True when `text` takes more than `limit` bytes in UTF-8, counted only when its length
 * cannot tell: a UTF-16 unit is 1 to 3 bytes (a surrogate pair, two units, is 4), so a text
 * longer than the limit is over it and one a third of it or shorter is within it. The server
 * passes `Buffer.byteLength`, which counts without encoding.
 */
export function utf8LongerThan(text: string, limit: number, utf8Bytes: (text: string) => number = encodedBytes): boolean {
  return text.length > limit || (text.length * 3 > limit && utf8Bytes(text) > limit);
}

/** Checks size and depth of any JSON value (ops and created documents alike). */
export function checkJsonLimits(value: unknown, limits: OpLimits, what: string): OpProblem | null {
  const text = JSON.stringify(value) ?? '';
  if (utf8LongerThan(text, limits.maxOpBytes)) {
    return { kind: 'too-large', message: `${what} is ${encodedBytes(text)} bytes; the limit is ${limits.maxOpBytes}` };
  }
  if (jsonDepth(value, limits.maxDepth + 1) > limits.maxDepth) {
    return { kind: 'too-deep', message: `${what} nests deeper than ${limits.maxDepth} levels` };
  }
  return null;
}

/**
 * Validates a json1 op: limits first (so a huge op is not walked), then keys and text the
 * store or json1 could not keep (before json1's own check, which refuses a "__proto__" path
 * without naming it), then json1's own shape check.
 */
export function validateJson1Op(op: unknown, limits: OpLimits = DEFAULT_OP_LIMITS): OpProblem | null {
  const problem = checkJsonLimits(op, limits, 'op');
  if (problem) return problem;
  const content = findOpContentProblem(op);
  if (content) return { kind: 'invalid', message: content };
  try {
    // checkValidOp is typed to take a JSONOp; it is exactly the guard for unknown input.
    json1.type.checkValidOp(op as json1.JSONOp);
  } catch (err) {
    return { kind: 'invalid', message: `invalid json1 op: ${(err as Error).message}` };
  }
  return null;
}

/** A UTF-16 surrogate without its partner: not a character, and not encodable as UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * True when `text` is well-formed Unicode (no lone surrogate). Stores encode strings as
 * UTF-8, which turns each lone surrogate into U+FFFD: "\ud800", "\udc00" and "\ufffd" would
 * come back as the same string.
 */
export function isWellFormedText(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/**
 * Object keys json1 cannot keep: every property of Object.prototype. json1 refuses to insert
 * a key whose value it reads as present (`toString`, `hasOwnProperty`… are inherited), and a
 * document's own `__proto__` key is turned into the object's prototype by the next edit
 * anywhere in it (json1 copies objects with Object.assign), vanishing from the JSON.
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  'toString',
  'valueOf',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
]);

function keyProblem(key: string): string | null {
  if (RESERVED_KEYS.has(key)) return `the key "${key}" is reserved (every JavaScript object has it) and cannot be stored; rename it`;
  if (!isWellFormedText(key)) return `the key ${JSON.stringify(key)} is not well-formed Unicode (a lone surrogate)`;
  return null;
}

const STRING_PROBLEM = 'a string is not well-formed Unicode (a lone surrogate) and cannot be stored as UTF-8';

/**
 * Why `value` (a created document, or a value an op inserts) cannot be stored faithfully:
 * a reserved key or a string that is not well-formed Unicode, anywhere in it. Null when fine.
 * Iterative: the value may be as deep as the depth limit allows.
 */
export function findContentProblem(value: unknown): string | null {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node === 'string') {
      if (!isWellFormedText(node)) return STRING_PROBLEM;
    } else if (Array.isArray(node)) {
      for (const item of node) stack.push(item);
    } else if (typeof node === 'object' && node !== null) {
      for (const key of Object.keys(node)) {
        const problem = keyProblem(key);
        if (problem) return problem;
        stack.push((node as Record<string, unknown>)[key]);
      }
    }
  }
  return null;
}

/** The text a text-unicode edit inserts: its string components. */
function insertedText(edit: unknown): string[] {
  return Array.isArray(edit) ? edit.filter((c): c is string => typeof c === 'string') : [];
}

function editsText(component: Record<string, unknown>): boolean {
  return component.es !== undefined || component.et === 'text-unicode' || component.et === 'http://sharejs.org/types/text-unicode';
}

/**
 * Why a (valid) json1 op would store something it cannot keep: a reserved key on its path or
 * in a value it inserts, or text that is not well-formed Unicode. Null when fine.
 */
export function findOpContentProblem(op: unknown): string | null {
  const stack: unknown[] = [op];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node === 'string') {
      const problem = keyProblem(node);
      if (problem) return problem;
    } else if (Array.isArray(node)) {
      for (const item of node) stack.push(item);
    } else if (typeof node === 'object' && node !== null) {
      const component = node as Record<string, unknown>;
      if (component.i !== undefined) {
        const problem = findContentProblem(component.i);
        if (problem) return problem;
      }
      if (editsText(component) && !insertedText(component.es ?? component.e).every(isWellFormedText)) return STRING_PROBLEM;
    }
  }
  return null;
}
