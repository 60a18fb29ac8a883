/**
 * A per-minute budget of actions per key (a user, or a connection), counted by
 * rate-limiter-flexible: in Redis when the instance has one (every instance then draws from
 * the same budget), else in this process.
 */
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** One window of a budget: `points` actions per `durationSeconds`. */
export interface BudgetWindow {
  readonly points: number;
  readonly durationSeconds: number;
}

/**
 * The per-minute budget in equal windows of 10 to 60 s (the most windows that divide it
 * exactly): a client over budget waits at most one window, not up to a whole minute, and no
 * aligned minute lets through more than `perMinute`. A budget with no divisor from 2 to 6
 * (7, 11, 61…) stays one 60 s window.
 */
export function budgetWindow(perMinute: number): BudgetWindow {
  for (const windows of [6, 5, 4, 3, 2]) {
    if (perMinute % windows === 0) return { points: perMinute / windows, durationSeconds: 60 / windows };
  }
  return { points: perMinute, durationSeconds: 60 };
}

/**
 * How long a budget waits for Redis before counting in memory instead: a Redis that stopped
 * answering (a partition without a reset) must not hold every submit until TCP gives up.
 */
const REDIS_TIMEOUT_MS = 250;

export interface RateBudgetOptions {
  /** Part of the Redis key, so budgets (ops, creates…) never share counters. */
  readonly name: string;
  readonly perMinute: number;
  /** A connected (or connecting) node-redis v5 client; null counts in this process only. */
  readonly redis: object | null;
  /** Deployment prefix (REDIS_PREFIX), so deployments sharing a Redis keep apart. */
  readonly prefix: string;
}

/** Most keys remembered as over budget (the oldest are forgotten first). */
const MAX_BLOCKED_KEYS = 10_000;

export class RateBudget {
  readonly window: BudgetWindow;
  private readonly limiter: RateLimiterAbstract;
  /**
   * Keys this instance saw refused, until when (ms since the epoch). A flood from one
   * client is then refused without asking the counter (or Redis) again per message.
   */
  private readonly blocked = new Map<string, number>();

  constructor(options: RateBudgetOptions) {
    this.window = budgetWindow(options.perMinute);
    const base = { points: this.window.points, duration: this.window.durationSeconds, keyPrefix: `${options.prefix}:rate:${options.name}` };
    // While Redis is away (or slow), each instance counts in memory: the budget is then per
    // instance for a while, which beats refusing every client or letting everything through.
    const memory = new RateLimiterMemory(base);
    if (options.redis === null) {
      this.limiter = memory;
      return;
    }
    const redis = new RateLimiterRedis({
      ...base,
      storeClient: options.redis,
      useRedisPackage: true,
      // Fail over at once when node-redis knows it is disconnected (its offline queue is off).
      rejectIfRedisNotReady: true,
      insuranceLimiter: memory,
    });
    this.limiter = new RLWrapperTimeouts({ limiter: redis, timeoutMs: REDIS_TIMEOUT_MS, insuranceLimiter: memory });
  }

  /**
   * Takes one action from `key`'s budget. Resolves null when it fits, else the milliseconds
   * until the budget has room again. Never rejects: a failing counter lets the action through.
   */
  async take(key: string): Promise<number | null> {
    try {
      await this.limiter.consume(key, 1);
      return null;
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) return null;
      const waitMs = Math.max(1, refusal.msBeforeNext);
      this.block(key, waitMs);
      return waitMs;
    }
  }

  /**
   * Milliseconds `key` must still wait if this instance already saw it refused in the
   * current window, else null (then only `take` knows). Synchronous and counter-free.
   */
  blockedFor(key: string): number | null {
    const until = this.blocked.get(key);
    if (until === undefined) return null;
    const waitMs = until - Date.now();
    if (waitMs > 0) return waitMs;
    this.blocked.delete(key);
    return null;
  }

  private block(key: string, waitMs: number): void {
    this.blocked.delete(key);
    this.blocked.set(key, Date.now() + waitMs);
    if (this.blocked.size > MAX_BLOCKED_KEYS) this.blocked.delete(this.blocked.keys().next().value!);
  }

  /** Gives one action back (one that turned out to cost nothing, e.g. a recognised resend). */
  async giveBack(key: string): Promise<void> {
    await this.limiter.reward(key, 1).catch(() => undefined);
  }
}
