/**
 * Query limits (README "Limits"), for clients — the application's own server-side
 * connections are exempt from all but validation:
 *   - QUERIES_PER_MINUTE per connection, fetches and subscriptions alike (TANDEM_RATE_LIMITED
 *     with retryAfterMs);
 *   - validation before the store sees the query, whatever the store (TANDEM_INVALID_QUERY:
 *     unknown or code-running operators, oversized filters, unsafe regular expressions);
 *   - MAX_QUERY_SCAN / MAX_QUERY_RESULTS, applied by the in-process stores
 *     (query-executor.ts; TANDEM_QUERY_TOO_LARGE);
 *   - subscriptions re-run at most once per QUERY_POLL_INTERVAL_MS each (ShareDB's
 *     `pollDebounce`), not once per op in the collection; queries that can be re-checked
 *     against the changed document alone (no $sort/$skip/$limit/$count/$distinct) still are,
 *     at once.
 */
import type ShareDB from 'sharedb';
import type { Agent } from '../auth/agent-identity.js';
import type { TandemBackend } from '../backend.js';
import type { ResourceLimits } from '../config.js';
import { isServerSide } from '../middleware/enforce-access.js';
import { compileQuery } from '../storage/mingo-query.js';
import { isQueryLimitedDb, markQuery, queryLimitsOf } from './query-options.js';
import { rateLimited } from './retry-after.js';

/**
 * A token bucket: `perMinute` tokens, refilled continuously. Allows a burst of a minute's
 * worth, then the steady rate.
 */
export class MinuteBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = perMinute;
    this.last = now();
  }

  /** Takes a token: 0 when allowed, else how long to wait for one, ms. */
  take(): number {
    const now = this.now();
    this.tokens = Math.min(this.perMinute, this.tokens + ((now - this.last) * this.perMinute) / 60_000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return ((1 - this.tokens) * 60_000) / this.perMinute;
  }
}

/** ShareDB reads these from the DB to space out a subscription's re-runs (query-emitter.js); untyped upstream. */
interface PollingDb {
  pollDebounce?: number;
  pollInterval?: number;
}

/** Query validation before any scan, scan/result caps, safe regular expressions, poll rate. */
export function useQueryLimits(backend: TandemBackend, limits: ResourceLimits): void {
  const db = backend.db as ShareDB.DB & PollingDb;
  if (isQueryLimitedDb(db)) db.setQueryLimits(queryLimitsOf(limits));
  // At most one full re-run per interval per subscription; no re-runs without ops (a
  // pollInterval would re-scan every subscribed query on a timer).
  db.pollDebounce = limits.queryPollIntervalMs;
  db.pollInterval = 0;

  const buckets = new WeakMap<Agent, MinuteBucket>();
  backend.use('query', (context, next) => {
    const serverSide = isServerSide(context.agent);
    markQuery(context.options, context.agent, serverSide);
    if (serverSide) return next();
    let bucket = buckets.get(context.agent);
    if (!bucket) buckets.set(context.agent, (bucket = new MinuteBucket(limits.queriesPerMinute)));
    const wait = bucket.take();
    if (wait > 0) return next(rateLimited(`queries (QUERIES_PER_MINUTE=${limits.queriesPerMinute})`, wait));
    try {
      compileQuery(context.query);
    } catch (err) {
      return next(err);
    }
    next();
  });
}
