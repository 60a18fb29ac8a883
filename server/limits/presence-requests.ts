/**
 * Per-channel pacing of presence re-send requests ('pr'). A request makes every client
 * showing presence on the channel send it again, to every subscriber: one round costs
 * holders × subscribers deliveries, and ShareDB clients send a request each time they see a
 * remote presence older than their document, so on a busy channel many ask at once.
 *
 * A request inside the interval is not dropped: the client that sent it may be one that
 * joined after the last round (or saw only a stale presence from it) and would otherwise
 * never see the others' cursors until they move. Such requests are folded into one round at
 * the end of the interval, so a channel still has at most one round per interval.
 */
export class RequestPacer {
  /** When each channel last had a round, ms; idle channels are swept once the map is large. */
  private readonly lastRound = new Map<string, number>();
  /** The one deferred round per channel, if any. */
  private readonly deferred = new Map<string, ReturnType<typeof setTimeout>>();
  private closed = false;

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

  /**
   * For a request `admit` turned away: runs `round` once the interval since the channel's
   * last round has passed, unless a deferred round is already waiting (it serves this
   * request too). Returns whether this call scheduled a round.
   */
  defer(channel: string, round: () => void): boolean {
    if (this.closed || this.deferred.has(channel)) return false;
    const last = this.lastRound.get(channel) ?? this.now();
    const wait = Math.max(0, last + this.intervalMs - this.now());
    const timer = setTimeout(() => {
      this.deferred.delete(channel);
      this.lastRound.set(channel, this.now());
      round();
    }, wait);
    // A pending re-send must not keep a process alive that is otherwise done.
    timer.unref?.();
    this.deferred.set(channel, timer);
    return true;
  }

  /** Cancels the deferred rounds (server shutdown). */
  close(): void {
    this.closed = true;
    for (const timer of this.deferred.values()) clearTimeout(timer);
    this.deferred.clear();
  }

  private sweep(now: number): void {
    for (const [channel, at] of this.lastRound) {
      if (now - at >= this.intervalMs && !this.deferred.has(channel)) this.lastRound.delete(channel);
    }
  }
}
