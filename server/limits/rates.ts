/**
 * Ops and document creations per user per minute (OPS_PER_MINUTE, CREATES_PER_MINUTE),
 * checked in the 'submit' middleware before ShareDB reads the document. With REDIS_URL the
 * counters live in Redis, so a user's budget is one across every instance; while Redis is
 * away each instance counts in memory.
 */
import { createClient } from 'redis';
import type ShareDB from 'sharedb';
import { ShareDbErrorCode, type WireError } from '../../client/protocol.js';
import { identityOf, type Agent } from '../auth/agent-identity.js';
import type { TandemBackend } from '../backend.js';
import { isServerSide } from '../middleware/enforce-access.js';
import type { Logger } from '../ops/logger.js';
import type { LimitsContext } from './index.js';
import { RateBudget } from './rate-budget.js';
import { rateLimited } from './retry-after.js';

export interface RateLimits {
  close(): Promise<void>;
}

/**
 * Whose budget an action draws from: the verified user (all their connections, on every
 * instance), else the connection. Anonymous connections exist only on loopback development
 * servers unless AUTH=none was chosen on purpose; MAX_CONNECTIONS_PER_IP bounds how many
 * budgets one address can open there.
 */
export function rateKey(agent: Agent): string {
  const identity = identityOf(agent);
  return identity ? `u:${identity.sub}` : `c:${agent.clientId}`;
}

/** The node-redis v5 client surface used here (its generic types are unwieldy). */
interface RateRedisClient {
  readonly isOpen: boolean;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
  connect(): Promise<unknown>;
  destroy(): void;
}

function openRedis(url: string, logger: Logger): RateRedisClient {
  const client = createClient({
    url,
    // A command while disconnected fails at once (and the budget counts in memory) instead
    // of waiting in node-redis's offline queue, holding the submit.
    disableOfflineQueue: true,
    socket: { reconnectStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 2_000), connectTimeout: 2_000 },
  }) as unknown as RateRedisClient;
  let down = false;
  client.on('error', (err) => {
    if (down) return;
    down = true;
    logger.warn({ err: err.message }, 'rate limits: redis unavailable, counting in memory per instance');
  });
  client.on('ready', () => {
    if (down) logger.info('rate limits: redis back');
    down = false;
  });
  // Not awaited: the server starts (and counts in memory) while Redis is still away.
  client.connect().catch(() => undefined);
  return client;
}

/** ShareDB's code for a resend of an op it already committed (acknowledged, not applied). */
const ALREADY_SUBMITTED = ShareDbErrorCode.ALREADY_SUBMITTED;

/** The submitted op as ShareDB's SubmitRequest holds it. */
interface SubmittedOp {
  create?: unknown;
}

/** Registers the rate checks; close() releases the Redis connection. */
export async function openRateLimits(backend: TandemBackend, context: LimitsContext): Promise<RateLimits> {
  const { limits, redisUrl, redisPrefix, logger } = context;
  const redis = redisUrl ? openRedis(redisUrl, logger) : null;
  const ops = new RateBudget({ name: 'ops', perMinute: limits.opsPerMinute, redis, prefix: redisPrefix });
  const creates = new RateBudget({ name: 'creates', perMinute: limits.createsPerMinute, redis, prefix: redisPrefix });
  /** Which budget each admitted submit was charged to, for a refund. */
  const charged = new WeakMap<object, { budget: RateBudget; key: string }>();

  const refusal = (isCreate: boolean, waitMs: number): WireError => {
    const what = isCreate ? `${limits.createsPerMinute} document creations per minute` : `${limits.opsPerMinute} ops per minute`;
    return rateLimited(what, waitMs);
  };

  // A client already refused in this window is refused again on arrival, before ShareDB
  // builds a submit request: a flood then costs little more than reading it.
  backend.use('receive', (context, next) => {
    const message = context.data as { a?: unknown; create?: unknown };
    if (message.a !== 'op' || isServerSide(context.agent)) return next();
    const isCreate = message.create !== undefined;
    const waitMs = (isCreate ? creates : ops).blockedFor(rateKey(context.agent));
    next(waitMs === null ? undefined : refusal(isCreate, waitMs));
  });

  backend.use('submit', (request, next) => {
    if (isServerSide(request.agent)) return next();
    const isCreate = (request.op as SubmittedOp).create !== undefined;
    const budget = isCreate ? creates : ops;
    const key = rateKey(request.agent);
    void budget.take(key).then((waitMs) => {
      if (waitMs === null) {
        charged.set(request, { budget, key });
        return next();
      }
      next(refusal(isCreate, waitMs));
    });
  });

  // A resend of an op that was committed already (its ack was lost) is acknowledged without
  // being applied again: it cost nothing, so it does not count twice.
  const onSubmitEnd = (error: ShareDB.Error | Error | null, request: object): void => {
    if ((error as { code?: unknown } | null)?.code !== ALREADY_SUBMITTED) return;
    const charge = charged.get(request);
    if (charge) void charge.budget.giveBack(charge.key);
  };
  backend.on('submitRequestEnd', onSubmitEnd);

  return {
    close: async () => {
      backend.off('submitRequestEnd', onSubmitEnd);
      if (!redis?.isOpen) return;
      try {
        redis.destroy();
      } catch {
        // Already closing.
      }
    },
  };
}
