/**
 * Catch-up after a Redis outage: ops committed by other instances while this instance's
 * Redis subscriber was away were published into the void. ShareDB never re-sends them, and
 * a ShareDB client only notices a gap when a *later* op arrives, so an idle document would
 * stay silently stale. This module re-reads those ops from the store and hands them to the
 * local subscribers, in version order, as if Redis had delivered them.
 *
 * Duplicates are harmless: a ShareDB client ignores an op older than its version, the
 * agent that submitted an op skips it, and an op from the future makes the client fetch
 * the ops it lacks (share/sharedb lib/client/doc.js `_handleOp`).
 */
import type ShareDB from 'sharedb';

/** A document channel with local subscribers, and what this instance last relayed on it. */
export interface CatchUpTarget {
  /** The pub/sub channel as ShareDB names it (with the deployment prefix). */
  channel: string;
  collection: string;
  id: string;
  /**
   * Version of the next op local subscribers expect (last relayed op's v + 1), or null when
   * no op was relayed since they subscribed. For null the newest op is replayed alone: every
   * subscriber either has it (and ignores it), applies it, or sees a gap and fetches.
   */
  next: number | null;
}

export interface CatchUpResult {
  /** Documents that had ops re-delivered (the others were up to date). */
  docs: number;
  /** Ops re-delivered in all. */
  ops: number;
  /** Documents whose store read failed; their subscribers catch up on the next op only. */
  failed: number;
}

/** Past this many missed ops only the newest is replayed; clients fetch the rest themselves. */
export const MAX_CATCH_UP_OPS = 500;
const CONCURRENCY = 8;

/** Published ops carry their collection and id, and no metadata (ShareDB's SubmitRequest). */
export type PublishedOp = Record<string, unknown> & { v: number; c: string; d: string };

/**
 * `prefix collection.id` → {collection, id}; null for collection channels (`prefix
 * collection`, used by query subscriptions) and presence channels. A collection name
 * containing '.' is ambiguous in ShareDB's channel naming; the first '.' is taken, and
 * the caller prefers the names carried by ops it saw on the channel.
 */
export function parseDocChannel(channel: string, prefix: string): { collection: string; id: string } | null {
  const bare = prefix && channel.startsWith(`${prefix} `) ? channel.slice(prefix.length + 1) : channel;
  if (bare.startsWith('$')) return null;
  const dot = bare.indexOf('.');
  if (dot <= 0) return null;
  return { collection: bare.slice(0, dot), id: bare.slice(dot + 1) };
}

function snapshotVersion(db: ShareDB.DB, collection: string, id: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // @types/sharedb types `fields` as a projection object; ShareDB passes null for "all".
    db.getSnapshot(collection, id, null as unknown as object, null, (err, snapshot) => (err ? reject(err) : resolve(snapshot?.v ?? 0)));
  });
}

/** Ops with from ≤ v < to (null: to the current version), in version order. */
function opsBetween(
  db: ShareDB.DB,
  collection: string,
  id: string,
  from: number,
  to: number | null,
): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    db.getOps(collection, id, from, to, null, (err, ops) =>
      err ? reject(err) : resolve((ops ?? []) as unknown as Array<Record<string, unknown>>),
    );
  });
}

/**
 * Re-emits, for every target, the ops committed since `target.next`. `stillWanted()` turns
 * false when a newer outage began (that outage's own catch-up takes over) or on close.
 */
export async function catchUp(
  db: ShareDB.DB,
  targets: readonly CatchUpTarget[],
  emit: (target: CatchUpTarget, op: PublishedOp) => void,
  stillWanted: () => boolean,
): Promise<CatchUpResult> {
  const result: CatchUpResult = { docs: 0, ops: 0, failed: 0 };
  let cursor = 0;
  const worker = async () => {
    while (cursor < targets.length && stillWanted()) {
      const target = targets[cursor++]!;
      try {
        let ops: Array<Record<string, unknown>>;
        if (target.next === null) {
          // Nothing relayed since subscribing: replay the newest op alone.
          const current = await snapshotVersion(db, target.collection, target.id);
          ops = current > 0 ? await opsBetween(db, target.collection, target.id, current - 1, current) : [];
        } else {
          // Everything since; a `to` past the current version is an error in some stores
          // (MemoryDB: "Missing ops"), so the range is left open. Past the bound only the
          // newest op is replayed, and the clients fetch the rest themselves.
          ops = await opsBetween(db, target.collection, target.id, target.next, null);
          if (ops.length > MAX_CATCH_UP_OPS) ops = ops.slice(-1);
        }
        if (!stillWanted()) return;
        if (ops.length === 0) continue;
        for (const stored of ops) {
          const { m: _metadata, ...rest } = stored;
          emit(target, { ...rest, c: target.collection, d: target.id } as PublishedOp);
        }
        result.docs++;
        result.ops += ops.length;
      } catch {
        // A store error here leaves that document to ShareDB's own gap detection (its next
        // op); the count is logged by the caller.
        result.failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, targets.length) }, worker));
  return result;
}
