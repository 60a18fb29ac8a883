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

/** Depth of nested arrays/objects, stopping early once `limit` is passed (cheap on huge input). */
export function jsonDepth(value: unknown, limit: number): number {
  if (typeof value !== 'object' || value === null) return 0;
  let deepest = 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  for (const child of children) {
    const d = jsonDepth(child, limit);
    if (d > deepest) deepest = d;
    if (deepest >= limit) break;
  }
  return deepest + 1;
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
