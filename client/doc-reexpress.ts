import * as json1 from 'ot-json1';
import type { Doc as JsonValue, JSONOp } from 'ot-json1';
import { tandemJson1 } from '../ot-types/index.js';
import { type DocReloadHost, forgetLocalState, reload } from './doc-reload.js';
import type { OpRejection } from './doc-types.js';
import { TandemError, TandemErrorCode } from './protocol.js';
import { reexpressQueue, type Reexpressed } from './reexpress.js';
import type { SendGate } from './send-gate.js';

/** What re-expressing needs from the document handle. */
export interface DocReexpressHost extends DocReloadHost {
  readonly gate: SendGate;
  reportRejection(rejection: OpRejection): void;
  /** Checks, applies and queues a local op (outside the undo history); false for a no-op. */
  submitLocal(op: JSONOp): boolean;
}

/**
 * Keeps a document's pending ops alive when the server lost the history they were written
 * against, instead of stalling them: the handle's side of reexpress.ts (which only computes),
 * with the state the handle must consult while it runs.
 */
export class DocReexpresser {
  /** Re-expressing the pending ops against the server's latest snapshot (see reexpress()). */
  private reexpressing = false;

  constructor(private readonly host: DocReexpressHost) {}

  /** While set, a missing-history answer is the old subscription's, not a reason to stall. */
  get active(): boolean {
    return this.reexpressing;
  }

  /**
   * The server no longer has the history our unacknowledged ops were written against (they
   * would stall). Starts over from its latest snapshot and sends our ops re-expressed against
   * it (client/reexpress.ts): what changed since our base snapshot stands in for the lost
   * ops, so text typed here merges with what others typed. An op of which nothing remains
   * (its target was removed) is reported through 'rejected'. The outbox keeps its record
   * until the re-expressed ops replace it (nothing is saved while the version is unknown), so
   * a crash meanwhile re-expresses again after the restart. False (the document stalls
   * instead) when a create or a delete is pending, or the base snapshot is unknown.
   */
  reexpress(error: TandemError): boolean {
    const { d } = this.host;
    let queue = d.inflightOp ? [d.inflightOp, ...d.pendingOps] : [...d.pendingOps];
    let base = this.host.sync.confirmed;
    if (base === undefined || queue.some((q) => q.create || q.del || q.op === undefined)) return false;
    // The server says the op it answered (the first of the queue: DocSync puts a kept op in
    // flight back at the head) was committed long ago: it is part of the base, and only the
    // ops after it are re-expressed (it must not apply twice).
    if (error.code === TandemErrorCode.ALREADY_COMMITTED && queue[0]?.op !== undefined) {
      try {
        base = json1.type.apply(base as JsonValue, queue[0].op);
      } catch {
        return false;
      }
      queue = queue.slice(1);
    }
    const ops = queue.map((q) => q.op as JSONOp);
    this.reexpressing = true;
    this.host.gate.hold('stalled');
    forgetLocalState(this.host);
    reload(this.host, () => {
      this.reexpressing = false;
      this.host.gate.release('stalled');
      const gone = (op: JSONOp, why: string) => {
        const error = new TandemError(TandemErrorCode.OP_DISCARDED, `an edit made offline could not be re-expressed: ${why}`);
        this.host.reportRejection({ code: error.code, message: error.message, op, error });
      };
      if (ops.length === 0) return;
      if (!d.type) {
        for (const op of ops) gone(op, 'the document was deleted meanwhile');
        return;
      }
      let moved: Reexpressed[];
      try {
        moved = reexpressQueue(tandemJson1, base, d.data as JsonValue, ops);
      } catch (err) {
        for (const op of ops) gone(op, `json1 could not transform it (${(err as Error).message})`);
        return;
      }
      moved.forEach(({ op, partial }, i) => {
        if (op === null) return gone(ops[i]!, 'what it changed was removed or replaced meanwhile');
        // The rest of it is sent; the app learns which edit lost a part.
        if (partial) gone(ops[i]!, 'part of it changed something removed or replaced meanwhile; the rest was sent');
        try {
          this.host.submitLocal(op);
        } catch (err) {
          gone(ops[i]!, (err as Error).message);
        }
      });
    });
    return true;
  }
}
