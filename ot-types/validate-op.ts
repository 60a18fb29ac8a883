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

/** Checks size and depth of any JSON value (ops and created documents alike). */
export function checkJsonLimits(value: unknown, limits: OpLimits, what: string): OpProblem | null {
  // TextEncoder, not Buffer: this module also runs in browsers.
  const bytes = utf8.encode(JSON.stringify(value) ?? '').length;
  if (bytes > limits.maxOpBytes) {
    return { kind: 'too-large', message: `${what} is ${bytes} bytes; the limit is ${limits.maxOpBytes}` };
  }
  if (jsonDepth(value, limits.maxDepth + 1) > limits.maxDepth) {
    return { kind: 'too-deep', message: `${what} nests deeper than ${limits.maxDepth} levels` };
  }
  return null;
}

/** Validates a json1 op: limits first (so a huge op is not walked), then json1's own shape check. */
export function validateJson1Op(op: unknown, limits: OpLimits = DEFAULT_OP_LIMITS): OpProblem | null {
  const problem = checkJsonLimits(op, limits, 'op');
  if (problem) return problem;
  try {
    // checkValidOp is typed to take a JSONOp; it is exactly the guard for unknown input.
    json1.type.checkValidOp(op as json1.JSONOp);
  } catch (err) {
    return { kind: 'invalid', message: `invalid json1 op: ${(err as Error).message}` };
  }
  return null;
}
