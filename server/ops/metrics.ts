import type { BackendStats } from '../backend.js';
import type { PubSubState } from '../pubsub/index.js';
import type { StorageState } from '../storage/index.js';

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
}

export interface MetricsSources {
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
  };
}
