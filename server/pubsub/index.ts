import ShareDB from 'sharedb';
import { deliverToSubscribers, type Turn } from '../turn.js';
import type { Logger } from '../ops/logger.js';

/**
 * Pub/sub health and counters, for /readyz and /metrics. For the in-process pub/sub the
 * status is always 'ready' and the counters stay 0.
 */
export interface PubSubState {
  kind: 'memory' | 'redis';
  /**
   * 'connecting' before the first connection; 'down' while either Redis connection is lost;
   * 'catching-up' from the subscriber's reconnect until missed ops were re-delivered;
   * 'ready' otherwise.
   */
  status: 'connecting' | 'ready' | 'down' | 'catching-up';
  /** ISO time the current outage began; null when ready. */
  downSince: string | null;
  /** Last connection error seen (kept after recovery, for diagnosis). */
  lastError: string | null;
  /** Outages since start (a 'ready' → 'down' transition each). */
  outages: number;
  /** Catch-up passes completed, and ops they re-delivered to local subscribers. */
  catchUps: number;
  catchUpOps: number;
  /** Publishes that could not reach Redis (ops remembered and re-published later). */
  publishFailures: number;
  /** Remembered ops re-published after an outage. */
  republished: number;
}

/** A fresh state record; counters start at zero. */
export function initialPubSubState(kind: PubSubState['kind'], status: PubSubState['status']): PubSubState {
  return { kind, status, downSince: null, lastError: null, outages: 0, catchUps: 0, catchUpOps: 0, publishFailures: 0, republished: 0 };
}

export interface PubSubHandle {
  kind: 'memory' | 'redis';
  pubsub: ShareDB.PubSub;
  state(): PubSubState;
  /** Resolves when the broker is connected, caught up and answering (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface PubSubOptions {
  redisUrl: string | null;
  prefix: string;
  logger: Logger;
  /** The store: the Redis pub/sub reads missed ops from it after an outage. */
  db: ShareDB.DB;
  /**
   * With group commit, Redis publishes wait for the end of the turn (after its COMMIT):
   * another instance must not broadcast an op this one has not made durable yet.
   */
  turn?: Turn;
}

/** ShareDB's MemoryPubSub as far as InProcessPubSub uses it (the class is missing from @types/sharedb). */
interface MemoryPubSubInstance {
  /** Channels some local stream listens on. */
  subscribed: Record<string, boolean>;
  _emit(channel: string, data: unknown): void;
}
const MemoryPubSubBase = (ShareDB as unknown as { MemoryPubSub: new () => MemoryPubSubInstance }).MemoryPubSub;

/** ShareDB's in-process pub/sub, delivering through the Turn (an idle turn's ack leaves first, see Turn.deliver). */
class InProcessPubSub extends MemoryPubSubBase {
  constructor(private readonly turn: Turn | undefined) {
    super();
  }

  _publish(channels: string[], data: unknown, callback: () => void): void {
    deliverToSubscribers(this.turn, () => {
      for (const channel of channels) if (this.subscribed[channel]) this._emit(channel, data);
      callback();
    });
  }
}

/** Redis pub/sub when REDIS_URL is set; in-process pub/sub (ShareDB's own) otherwise. */
export async function openPubSub(options: PubSubOptions): Promise<PubSubHandle> {
  if (options.redisUrl) {
    const { openRedisPubSub } = await import('./redis.js');
    return openRedisPubSub({ url: options.redisUrl, prefix: options.prefix, logger: options.logger, db: options.db, turn: options.turn });
  }
  const pubsub = new InProcessPubSub(options.turn) as unknown as ShareDB.PubSub;
  const state = initialPubSubState('memory', 'ready');
  return {
    kind: 'memory',
    pubsub,
    state: () => ({ ...state }),
    ping: async () => {},
    // Backend.close() closes the pubsub it was given; nothing else holds resources here.
    close: async () => {},
  };
}
