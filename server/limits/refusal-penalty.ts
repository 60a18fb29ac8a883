/**
 * A connection that keeps sending requests the server refuses is read more slowly. Refusals
 * are cheap but not free, and a client in a closed loop gets each one back at once: one
 * connection made ~10,000 a second and tripled the other clients' ack p99 (BENCHMARKS.md,
 * "Flood isolation"). Each connection may be refused REFUSALS_PER_SECOND times a second
 * (burst twice that); past it, every refusal holds the connection's input (FramePacer.hold)
 * until its budget is back, at most MAX_REFUSAL_HOLD_MS at a time. A client that honours
 * `retryAfterMs`, as the SDK does, stays far below the budget and is never held.
 */
import { TokenBucket } from './presence-bucket.js';

/** Longest one hold lasts: the debt stops growing there, so a client that stops flooding recovers within it. */
export const MAX_REFUSAL_HOLD_MS = 1_000;

export class RefusalPenalty {
  private readonly bucket: TokenBucket | null;
  private readonly maxDebt: number;

  /** `perSecond` 0: no penalty. */
  constructor(perSecond: number, now?: () => number) {
    this.bucket = perSecond > 0 ? new TokenBucket(perSecond, 2 * perSecond, now) : null;
    this.maxDebt = (perSecond * MAX_REFUSAL_HOLD_MS) / 1000;
  }

  /** Counts one refusal; returns how long to hold the connection's input, ms (0: within budget). */
  refused(): number {
    return this.bucket === null ? 0 : this.bucket.charge(1, this.maxDebt);
  }
}
