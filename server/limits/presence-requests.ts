/**
 * Per-channel pacing of presence re-send requests ('pr'). A request makes every client
 * showing presence on the channel send it again, to every subscriber: one round costs
 * holders × subscribers deliveries, and ShareDB clients send a request each time they see a
 * remote presence older than their document, so on a busy channel many ask at once. The
 * re-sends of one round reach every subscriber of the channel, so a second request within
 * the interval adds nothing but another round.
 */
export class RequestPacer {
  /** When each channel last had a round, ms; idle channels are swept once the map is large. */
  private readonly lastRound = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly sweepAbove = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** True when `channel` may have a round now (and records it). */
  admit(channel: string): boolean {
    const now = this.now();
    const last = this.lastRound.get(channel);
    if (last !== undefined && now - last < this.intervalMs) return false;
    if (last === undefined && this.lastRound.size >= this.sweepAbove) this.sweep(now);
    this.lastRound.set(channel, now);
    return true;
  }

  private sweep(now: number): void {
    for (const [channel, at] of this.lastRound) if (now - at >= this.intervalMs) this.lastRound.delete(channel);
  }
}
