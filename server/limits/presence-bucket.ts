/**
 * A token bucket: `ratePerSecond` tokens flow in up to `capacity`; each message takes its
 * cost. Kept per connection, so it is plain memory and arithmetic (no timers, nothing to
 * release when the connection goes).
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly capacity: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = capacity;
    this.updatedAt = now();
  }

  /** Takes `cost` tokens if they are there and returns 0; else takes nothing and returns the ms until they will be. */
  take(cost = 1): number {
    this.refill();
    if (this.tokens >= cost) {
      this.tokens -= cost;
      return 0;
    }
    return ((cost - this.tokens) / this.ratePerSecond) * 1000;
  }

  /**
   * Takes `cost` tokens whatever is left: work already accepted whose price is known only
   * later (presence transformed through many ops) is paid by refusing the next messages.
   * The debt stops growing at `maxDebt` tokens. Returns the ms until the bucket is out of
   * debt (0 if it is not in debt).
   */
  charge(cost: number, maxDebt = Number.POSITIVE_INFINITY): number {
    this.refill();
    this.tokens = Math.max(-maxDebt, this.tokens - cost);
    return this.tokens >= 0 ? 0 : (-this.tokens / this.ratePerSecond) * 1000;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updatedAt) * this.ratePerSecond) / 1000);
    this.updatedAt = now;
  }
}
