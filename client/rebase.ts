/**
 * Pure helpers for the SDK's own check of ShareDB's client-side rebase (used by doc-sync.ts).
 *
 * When a remote op `b` arrives while our ops are queued, ShareDB's client computes our ops
 * exactly as the server will: a' = transform(a, b, 'left'). It then applies
 * b' = transform(b, a, 'right') to the local data and relies on json1's TP1 property for
 * apply(apply(S, a), b') to equal apply(apply(S, b), a'). json1 breaks TP1 on some op pairs
 * (and throws on others; see test/fuzz/pinned-cases.ts), so the SDK instead derives the
 * local data from the server snapshot: apply(S_new, a'), then the rest of the queue.
 */
import type { Doc as JsonValue, JSONOp } from 'ot-json1';

/** The ShareDB OT type Tandem registers; transforms must match the server's exactly. */
export interface TransformingType {
  transform(op: JSONOp, other: JSONOp, side: 'left' | 'right'): JSONOp;
  apply(doc: JsonValue, op: JSONOp): JsonValue | undefined;
}

/** Components that only edit text or numbers in place: json1 transforms those safely (TP1 holds). */
const TEXT_ONLY_KEYS: ReadonlySet<string> = new Set(['es', 'ena', 'e', 'et']);

/** True when `op` has no insert, remove, pick or drop, only es/ena/e edits (or is a no-op). */
export function isTextOnlyOp(op: JSONOp | undefined): boolean {
  if (op == null) return true;
  const walk = (node: unknown): boolean => {
    if (Array.isArray(node)) return node.every(walk);
    if (typeof node === 'object' && node !== null) return Object.keys(node).every((k) => TEXT_ONLY_KEYS.has(k));
    // Path keys (strings, numbers).
    return true;
  };
  return walk(op);
}

/** `data` with each op applied in order (throws if one does not apply). */
export function applyAll(type: TransformingType, data: JsonValue | undefined, ops: readonly JSONOp[]): JsonValue | undefined {
  let out = data;
  for (const op of ops) out = type.apply(out as JsonValue, op);
  return out;
}

export interface RebaseResult {
  /** The server's snapshot after the remote op: apply(confirmed, remote). */
  confirmed: JsonValue | undefined;
  /** The queued ops that could be rebased, as the server will apply them (a prefix of the queue). */
  rebased: JSONOp[];
  /** How many queued ops (from the end) could not be rebased and must be rolled back. */
  dropped: number;
  /** What the local data must be: `confirmed` with `rebased` applied. */
  local: JsonValue | undefined;
}

/**
 * Rebases a client's queue (in-flight op first) onto a remote op exactly as the server
 * does, without relying on TP1: each queued op q becomes transform(q, b, 'left') against
 * the remote op as already transformed past the ops before q. Where a transform throws,
 * that op and every op after it (they were made on top of it) cannot be rebased: they are
 * counted in `dropped`. For the in-flight op this matches the server, which transforms it
 * the same way and refuses it when that throws.
 */
export function rebaseQueue(
  type: TransformingType,
  confirmed: JsonValue | undefined,
  remote: JSONOp,
  queue: readonly JSONOp[],
): RebaseResult {
  const next = type.apply(confirmed as JsonValue, remote);
  const rebased: JSONOp[] = [];
  let incoming: JSONOp | null = remote;
  for (const op of queue) {
    // The remote op could not be carried past an earlier queued op: later ones cannot be rebased.
    if (incoming === null) break;
    let moved: JSONOp;
    try {
      moved = type.transform(op, incoming, 'left');
    } catch {
      break;
    }
    try {
      incoming = type.transform(incoming, op, 'right');
    } catch {
      incoming = null;
    }
    rebased.push(moved);
  }
  return { confirmed: next, rebased, dropped: queue.length - rebased.length, local: applyAll(type, next, rebased) };
}

/** Structural equality of two JSON values (browser-safe; no node:util). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ka = Object.keys(a);
  const ob = b as Record<string, unknown>;
  if (ka.length !== Object.keys(ob).length) return false;
  const oa = a as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(ob, k) && jsonEqual(oa[k], ob[k]));
}
