import type { BackendStats } from '../backend.js';
import type { PubSubState } from '../pubsub/index.js';
import type { StorageState } from '../storage/index.js';
import type { WebhookStats } from '../webhooks/dispatcher.js';

/**
 * The JSON at GET /metrics. Backend counters stay at the top level (the load tool reads
 * `commits`, `commitRetries`, `rejected` and `memory.{rss,heapUsed}` from there).
 */
export interface Metrics extends BackendStats {
  /** Connected ShareDB agents (socket.io, raw WebSocket and server-side connections). */
  agents: number;
  uptimeSeconds: number;
  memory: { rss: number; heapUsed: number };
  pubsub: PubSubState;
  store: StorageState;
  /** WEBHOOK_URLS: deliveries made and failed, ops delivered, documents still to deliver. */
  webhooks?: { delivered: number; opsDelivered: number; failed: number; backlog: number };
}

export interface MetricsSources {
  webhooks?: WebhookStats | null;
  stats: BackendStats;
  agentsCount(): number;
  pubsubState(): PubSubState;
  storageState(): StorageState;
  startedAt: number;
}

export function collectMetrics(sources: MetricsSources): Metrics {
  const { rss, heapUsed } = process.memoryUsage();
  return {
    ...sources.stats,
    agents: sources.agentsCount(),
    uptimeSeconds: Math.round((Date.now() - sources.startedAt) / 1000),
    memory: { rss, heapUsed },
    pubsub: sources.pubsubState(),
    store: sources.storageState(),
    ...(sources.webhooks
      ? {
          webhooks: {
            delivered: sources.webhooks.delivered,
            opsDelivered: sources.webhooks.opsDelivered,
            failed: sources.webhooks.failed,
            backlog: sources.webhooks.backlog(),
          },
        }
      : {}),
  };
}
