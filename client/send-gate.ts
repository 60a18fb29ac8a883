import type { DocInternals } from './sharedb-internals.js';

/**
 * Why a document's ops are held back from the server:
 * - 'unsaved': a local op is not yet in the durable outbox (write-ahead: an op's src/seq
 *   must be saved before it can reach the server, or a restart could not resend it as the
 *   same op);
 * - 'stalled': the server cannot rebase our pending ops (its op log lacks what they need);
 * - 'retry': waiting before resending an op the server failed transiently;
 * - 'closed': the handle is closing; what is queued stays in the outbox for the next run;
 * - 'auth': the connection's token expired; waiting for a fresh one to reach the server.
 */
export type HoldReason = 'unsaved' | 'stalled' | 'retry' | 'closed' | 'auth';

/**
 * Several independent reasons share ShareDB's single `paused` flag; the doc sends again
 * only when none is left. ShareDB's `resume()` flushes the queue straight away.
 */
export class SendGate {
  private readonly reasons = new Set<HoldReason>();

  constructor(private readonly doc: DocInternals) {}

  hold(reason: HoldReason): void {
    this.reasons.add(reason);
    if (!this.doc.paused) this.doc.pause();
  }

  release(reason: HoldReason): void {
    if (!this.reasons.delete(reason)) return;
    if (this.reasons.size === 0) this.doc.resume();
  }

  holds(reason: HoldReason): boolean {
    return this.reasons.has(reason);
  }
}
