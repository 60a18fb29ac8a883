/**
 * Bounds on what one client can make a server do or hold (issue: no single client can
 * crash, freeze or exhaust the server). Each area registers its ShareDB middleware here;
 * transport-level bounds (buffers, heartbeats, connections per IP) live in the transports.
 */
import type { ResourceLimits } from '../config.js';
import type { TandemBackend } from '../backend.js';
import type { Logger } from '../ops/logger.js';
import { useDocumentLimits } from './documents.js';
import { usePresenceLimits } from './presence.js';
import { useQueryLimits } from './queries.js';
import { openRateLimits, type RateLimits } from './rates.js';

export interface LimitsContext {
  limits: ResourceLimits;
  /** Rate counters are kept in Redis (shared by every instance) when set, else in memory. */
  redisUrl: string | null;
  redisPrefix: string;
  logger: Logger;
}

/** Registers every per-message limit on the backend; close() releases the rate store and timers. */
export async function useResourceLimits(backend: TandemBackend, context: LimitsContext): Promise<RateLimits> {
  useDocumentLimits(backend, context.limits);
  const presence = usePresenceLimits(backend, context.limits);
  useQueryLimits(backend, context.limits);
  const rates = await openRateLimits(backend, context);
  return {
    close: () => {
      presence.close();
      return rates.close();
    },
  };
}
