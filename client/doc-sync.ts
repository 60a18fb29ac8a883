/**
 * Instruments one ShareDB Doc so the SDK knows what ShareDB's client does not tell it:
 * the server's snapshot at the doc's version (needed to persist, and to roll back ops
 * whose removals json1 cannot invert), and what to do with an op the server refused.
 */
import * as json1 from 'ot-json1';
import type { Doc as JsonValue, JSONOp } from 'ot-json1';
import type { Doc } from 'sharedb/lib/client/index.js';
import { tandemJson1 } from '../ot-types/index.js';
import { retryAfterOf, ShareDbErrorCode, TandemError, TandemErrorCode } from './protocol.js';
import { applyAll, isTextOnlyOp, jsonEqual, rebaseQueue } from './rebase.js';
import { docInternals, type DocInternals, type OpMessage, type QueuedOp, type ShareDbClientError } from './sharedb-internals.js';

/**
 * What a refused submit means for the op:
 * - 'rejected': the server will never take it (invalid, forbidden, too large): roll back;
 * - 'keep': the server cannot rebase it (ops missing from its log): keep it, stop sending;
 * - 'retry': a transient server failure: keep it and send it again later (bounded);
 * - 'reauth': the connection's token expired: keep it, refresh the token, send it again;
 * - 'throttled': over a rate limit, nothing was done: keep it and send it again once the
 *   server's `retryAfterMs` passed, however often that happens (it is never a failure).
 */
export type SubmitErrorKind = 'rejected' | 'keep' | 'retry' | 'reauth' | 'throttled';

const KEEP_CODES: ReadonlySet<string> = new Set([
  TandemErrorCode.MISSING_OPS,
  // Committed earlier, history since compacted: the ops after it need the same treatment.
  TandemErrorCode.ALREADY_COMMITTED,
  ShareDbErrorCode.TRANSFORM_OPS_NOT_FOUND,
  ShareDbErrorCode.VERSION_NEWER,
  // sharedb-mongo's "Missing ops from requested version" (a numeric code).
  '5103',
]);

const RETRY_CODES: ReadonlySet<string> = new Set([
  TandemErrorCode.SHUTTING_DOWN,
  TandemErrorCode.STORAGE_ERROR,
  TandemErrorCode.DB_CLOSED,
  ShareDbErrorCode.MAX_SUBMIT_RETRIES,
]);

export function classifySubmitError(code: string): SubmitErrorKind {
  if (code === TandemErrorCode.TOKEN_EXPIRED) return 'reauth';
  if (code === TandemErrorCode.RATE_LIMITED) return 'throttled';
  if (KEEP_CODES.has(code)) return 'keep';
  if (RETRY_CODES.has(code)) return 'retry';
  return 'rejected';
}

/** True for codes that mean "the server's op log cannot bring this client up to date". */
export function isMissingHistory(code: string): boolean {
  return KEEP_CODES.has(code);
}

/** Maps any ShareDB (or other) error to the SDK's one error class. */
export function toTandemError(err: unknown): TandemError {
  if (err instanceof TandemError) return err;
  const e = err as ShareDbClientError | null | undefined;
  const code = e?.code != null ? String(e.code) : TandemErrorCode.UNKNOWN;
  return new TandemError(code, e?.message ?? String(err));
}

/** The op part of a queued op or an op message, captured before ShareDB transforms it. */
interface OpPart {
  op?: JSONOp;
  create?: { data: unknown };
  del?: boolean;
}

function opPart(source: QueuedOp | OpMessage): OpPart {
  return { op: source.op, create: source.create, del: source.del };
}

function applyPart(data: JsonValue | undefined, part: OpPart): JsonValue | undefined {
  if (part.create) return part.create.data as JsonValue;
  if (part.del) return undefined;
  if (part.op !== undefined) return json1.type.apply(data as JsonValue, part.op) as JsonValue;
  return data;
}

export { applyAll, isTextOnlyOp, rebaseQueue, type RebaseResult } from './rebase.js';

/** The queue as it was before ShareDB handled a remote op (ShareDB transforms it in place). */
interface QueueBefore {
  entries: QueuedOp[];
  ops: Array<JSONOp | undefined>;
}

export interface DocSyncHooks {
  /** Version, snapshot or queue changed (an ack, a remote op, a rollback): persist. */
  changed(): void;
  /** The server refused `op` for good; ShareDB already rolled it back locally. */
  rejected(error: TandemError, op: JSONOp | null): void;
  /**
   * The in-flight op was put back at the head of the queue ('keep', 'retry', 'reauth' or
   * 'throttled'); `retryAfterMs` is the server's wait for 'throttled', when it sent one.
   */
  kept(error: TandemError, kind: Exclude<SubmitErrorKind, 'rejected'>, retryAfterMs: number | null): void;
  /** ShareDB had to reload the doc (hard rollback) and dropped these queued ops. */
  discarded(ops: QueuedOp[], error: TandemError): void;
  /** `data` was replaced wholesale (rebuilt from the server snapshot and our queue). */
  reset(): void;
}

export class DocSync {
  /**
   * The document as the server had it at `doc.version` — i.e. without our unacknowledged
   * ops. ShareDB's `doc.data` includes them. Kept by applying each acknowledged op and
   * each untransformed remote op, exactly as the server applied them.
   */
  confirmed: JsonValue | undefined = undefined;
  /** True while ShareDB applies the inverse of a refused op (its 'op' events are rollbacks). */
  inRollback = false;
  private readonly doc: DocInternals;
  /** Errors already reported as a rejection; ShareDB emits some of them again as 'error'. */
  private readonly handled = new WeakSet<object>();
  /**
   * In-flight ops that could not be rebased onto a remote op and are already gone from
   * `data`; the server refuses them too (same transform), and their refusal needs no rollback.
   */
  private readonly removedLocally = new WeakSet<QueuedOp>();
  private readonly onLoad = () => {
    // ShareDB only ingests a snapshot when nothing is pending, so data is the server's.
    this.confirmed = this.doc.data as JsonValue | undefined;
    this.hooks.changed();
  };

  constructor(
    private readonly shareDoc: Doc,
    private readonly hooks: DocSyncHooks,
  ) {
    this.doc = docInternals(shareDoc);
    // Shadow the prototype method on this instance only; `detach()` removes it again.
    const original = (Object.getPrototypeOf(this.doc) as DocInternals)._handleOp;
    this.doc._handleOp = (err, message) => this.handleOp(original, err, message);
    shareDoc.on('load', this.onLoad);
  }

  /** True when `err` was already reported through `rejected`. */
  wasHandled(err: unknown): boolean {
    return typeof err === 'object' && err !== null && this.handled.has(err);
  }

  detach(): void {
    delete (this.doc as Partial<DocInternals>)._handleOp;
    this.shareDoc.off('load', this.onLoad);
  }

  private handleOp(original: DocInternals['_handleOp'], err: ShareDbClientError | null, message: OpMessage): void {
    const doc = this.doc;
    if (!err) this.claimEcho(message);
    const inflight = doc.inflightOp;
    if (err) {
      if (!inflight || String(err.code) === ShareDbErrorCode.NO_OP) return original.call(doc, err, message);
      return this.refused(original, err, message, inflight);
    }
    const isAck = inflight !== null && message.src === inflight.src && message.seq === inflight.seq;
    const part = opPart(isAck ? inflight : message);
    const before = doc.version;
    const queue = isAck ? null : this.queueBefore();
    try {
      original.call(doc, err, message);
    } catch (thrown) {
      // json1 threw while ShareDB rebased our queue onto the remote op (an upstream bug):
      // ShareDB left the doc half-transformed and would only surface a Connection 'error'.
      if (!queue || part.op === undefined || before === null || doc.version !== before) throw thrown;
      this.recoverFromTransform(thrown, part.op, before, queue);
      return;
    }
    // ShareDB may instead have fetched (version gap) or ignored (duplicate) the message.
    const applied = isAck ? doc.inflightOp !== inflight : before !== null && doc.version === before + 1;
    if (!applied) return;
    // With nothing of ours queued, the server's document is ShareDB's: share it rather than
    // apply the op a second time (json1 never mutates a document; a 1 MB text paid twice).
    const nothingQueued = doc.inflightOp === null && doc.pendingOps.length === 0;
    this.confirmed = nothingQueued ? (doc.data as JsonValue | undefined) : applyPart(this.confirmed, part);
    if (queue) this.verifyRebase(part);
    this.hooks.changed();
  }

  private queueBefore(): QueueBefore | null {
    const doc = this.doc;
    const entries = doc.inflightOp ? [doc.inflightOp, ...doc.pendingOps] : [...doc.pendingOps];
    return entries.length === 0 ? null : { entries, ops: entries.map((q) => q.op) };
  }

  /**
   * After a remote op was applied over our queued ops: the local data must be the server's
   * snapshot with our (ShareDB-transformed) queued ops applied in order — exactly what the
   * server will hold once it commits them. ShareDB instead applied the remote op transformed
   * past ours and trusted json1's TP1, which json1 breaks on some op pairs: put the data
   * right. Text and number edits alone are TP1-safe, and skip the check.
   */
  private verifyRebase(remote: OpPart): void {
    const doc = this.doc;
    const entries = doc.inflightOp ? [doc.inflightOp, ...doc.pendingOps] : doc.pendingOps;
    if (entries.length === 0 || remote.op === undefined || this.confirmed === undefined) return;
    if (entries.some((q) => q.op === undefined)) return;
    const removed = entries.some((q) => this.removedLocally.has(q));
    if (!removed && isTextOnlyOp(remote.op) && entries.every((q) => isTextOnlyOp(q.op))) return;
    let expected: JsonValue | undefined;
    try {
      const ops = entries.filter((q) => !this.removedLocally.has(q)).map((q) => q.op as JSONOp);
      expected = applyAll(tandemJson1, this.confirmed, ops);
    } catch {
      return;
    }
    if (jsonEqual(expected, doc.data)) return;
    doc._setData(expected);
    this.hooks.reset();
  }

  /**
   * ShareDB's transform of our queue against the remote op `remote` threw (before it bumped
   * the version or applied anything). Rebuilds the doc as the server will have it: the
   * snapshot after `remote`, plus our queued ops rebased exactly as the server rebases them.
   * Ops that cannot be rebased are rolled back and reported as TANDEM_TRANSFORM_FAILED (an
   * in-flight one when the server refuses it, with the same code).
   */
  private recoverFromTransform(thrown: unknown, remote: JSONOp, before: number, queue: QueueBefore): void {
    const doc = this.doc;
    queue.entries.forEach((q, i) => (q.op = queue.ops[i]));
    const ops = queue.ops.filter((op): op is JSONOp => op !== undefined);
    const cause = toTandemError(thrown);
    if (this.confirmed === undefined || ops.length !== queue.entries.length) {
      // Nothing to rebuild from: reload from the server (ShareDB reports to the ops' callbacks).
      doc._hardRollback(new TandemError(TandemErrorCode.TRANSFORM_FAILED, cause.message));
      return;
    }
    const result = rebaseQueue(tandemJson1, this.confirmed, remote, ops);
    const kept = queue.entries.slice(0, result.rebased.length);
    const dropped = queue.entries.slice(result.rebased.length);
    kept.forEach((q, i) => (q.op = result.rebased[i]));
    const inflight = doc.inflightOp;
    doc.pendingOps = doc.pendingOps.filter((q) => kept.includes(q));
    doc.version = before + 1;
    this.confirmed = result.confirmed;
    doc._setData(result.local);
    const error = new TandemError(
      TandemErrorCode.TRANSFORM_FAILED,
      `a local op could not be rebased onto a concurrent remote op (json1: ${cause.message || 'internal assertion'}); it was rolled back`,
    );
    for (const q of dropped) {
      if (q === inflight) {
        // Already sent: the server decides (and refuses it); see `refused`.
        this.removedLocally.add(q);
        continue;
      }
      for (const callback of q.callbacks ?? []) callback?.(error);
      this.hooks.rejected(error, queue.ops[queue.entries.indexOf(q)] ?? null);
    }
    this.hooks.reset();
    this.hooks.changed();
    doc._emitNothingPending();
  }

  /**
   * An op of ours that a previous run sent and the server committed, but whose ack that run
   * never saved, comes back as an ordinary op while it still waits, unsent, at the head of
   * the queue (sending may be held). ShareDB would transform our copy against it and apply
   * both. It is our ack: make it the in-flight op so ShareDB acknowledges it as such.
   */
  private claimEcho(message: OpMessage): void {
    const doc = this.doc;
    const head = doc.pendingOps[0];
    if (doc.inflightOp || !head || head.src == null || head.seq == null) return;
    if (message.src !== head.src || message.seq !== head.seq) return;
    doc.inflightOp = head;
    doc.pendingOps.shift();
  }

  private refused(original: DocInternals['_handleOp'], err: ShareDbClientError, message: OpMessage, inflight: QueuedOp): void {
    const doc = this.doc;
    const error = toTandemError(err);
    const kind = classifySubmitError(error.code);
    // A throttled create is kept too: the server refused it before reading anything.
    if (kind === 'throttled' || (kind !== 'rejected' && !inflight.create)) {
      // Back to the head of the queue, still marked as sent so ShareDB never composes into
      // it: it may have reached the server, and its src/seq must stay its identity.
      doc.inflightOp = null;
      doc.pendingOps.unshift(inflight);
      this.hooks.kept(error, kind, kind === 'throttled' ? retryAfterOf(error) : null);
      this.hooks.changed();
      return;
    }
    if (this.removedLocally.has(inflight)) {
      // Its effect is already gone from `data` (recoverFromTransform): nothing to roll back.
      this.handled.add(err);
      doc._clearInflightOp(err);
      this.hooks.rejected(error, inflight.op ?? null);
      this.hooks.changed();
      return;
    }
    if (inflight.create) {
      // A create racing another client's create is settled by ShareDB's reload; the doc
      // handle's open logic reports anything else.
      return original.call(doc, err, message);
    }
    const refusedOp = inflight.op ?? null;
    if (inflight.op !== undefined && this.confirmed !== undefined) {
      // json1 cannot invert a removal without the removed value, and loses those values
      // when ops are transformed; the server snapshot at our version has them.
      try {
        inflight.op = json1.type.makeInvertible(inflight.op, this.confirmed);
      } catch {
        // Not invertible against our snapshot: ShareDB falls back to reloading the doc.
      }
    }
    const queued = [inflight, ...doc.pendingOps];
    this.handled.add(err);
    this.inRollback = true;
    try {
      original.call(doc, err, message);
    } finally {
      this.inRollback = false;
    }
    this.hooks.rejected(error, refusedOp);
    if (doc._isInHardRollback) {
      const dropped = queued.slice(1).filter((q) => !q.create);
      if (dropped.length > 0) {
        this.hooks.discarded(
          dropped,
          new TandemError(
            TandemErrorCode.OP_DISCARDED,
            `the document was reloaded after a refused op (${error.code}); ${dropped.length} queued op(s) were dropped`,
          ),
        );
      }
    }
    this.hooks.changed();
  }
}
