/**
 * Pairs each op's submit time with its arrival at the document's other clients, to measure
 * submit→seen-by-others latency. Ops are keyed by the document version right after them:
 * the submitter learns it from the acknowledgement, receivers when they apply the op. The
 * two happen in either order (different sockets), so whichever comes second completes the
 * pair. All clients of a document live in one worker (load/plan.ts), so one clock serves.
 */

interface Entry {
  /** Submit times (ms) of the ops committed at this version (several if the client composed). */
  submits: number[];
  /** Arrival times (ms) at receivers, with the time each receiver last came online. */
  arrivals: Array<{ at: number; onlineSince: number }>;
  created: number;
  /** True when the submitter was disconnected between submit and ack: not a fan-out sample. */
  delayed: boolean;
}

export interface SeenSink {
  recordSeen(ms: number): void;
  delayedByDisconnect: number;
}

/** Entries older than this are dropped (an op some receiver never saw, e.g. after a close). */
const MAX_AGE_MS = 15_000;

export class SeenLedger {
  private readonly entries = new Map<number, Entry>();

  constructor(private readonly sink: SeenSink) {}

  /** The submitter's ack for the op that produced `version`, submitted at `submittedAt`. */
  acked(version: number, submittedAt: number, delayed: boolean, now: number): void {
    const entry = this.entry(version, now);
    entry.submits.push(submittedAt);
    entry.delayed ||= delayed;
    for (const arrival of entry.arrivals) this.pair(submittedAt, arrival.at, arrival.onlineSince, entry.delayed);
  }

  /** A receiver applied the op that produced `version`; it was online since `onlineSince`. */
  seen(version: number, at: number, onlineSince: number): void {
    const entry = this.entry(version, at);
    entry.arrivals.push({ at, onlineSince });
    for (const submittedAt of entry.submits) this.pair(submittedAt, at, onlineSince, entry.delayed);
  }

  /** Drops old entries; call about once a second. */
  sweep(now: number): void {
    for (const [version, entry] of this.entries) {
      if (now - entry.created > MAX_AGE_MS) this.entries.delete(version);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private pair(submittedAt: number, arrivedAt: number, onlineSince: number, delayed: boolean): void {
    // A receiver that (re)connected after the submit caught up on reconnect: that is
    // reconnect catch-up (bench W5), not live fan-out.
    if (delayed || onlineSince > submittedAt) this.sink.delayedByDisconnect++;
    else this.sink.recordSeen(arrivedAt - submittedAt);
  }

  private entry(version: number, now: number): Entry {
    let entry = this.entries.get(version);
    if (!entry) {
      entry = { submits: [], arrivals: [], created: now, delayed: false };
      this.entries.set(version, entry);
    }
    return entry;
  }
}
