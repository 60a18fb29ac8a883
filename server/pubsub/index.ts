import ShareDB from 'sharedb';
import type { Logger } from '../ops/logger.js';

export interface PubSubHandle {
  kind: 'memory' | 'redis';
  pubsub: ShareDB.PubSub;
  /** Resolves when the broker answers (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface PubSubOptions {
  redisUrl: string | null;
  prefix: string;
  logger: Logger;
}

/** In-process pub/sub (ShareDB's own) when no Redis is configured. */
export async function openPubSub(options: PubSubOptions): Promise<PubSubHandle> {
  if (options.redisUrl) {
    const { openRedisPubSub } = await import('./redis.js');
    return openRedisPubSub(options.redisUrl, options.prefix, options.logger);
  }
  // MemoryPubSub is exported by sharedb but missing from @types/sharedb.
  const MemoryPubSub = (ShareDB as unknown as { MemoryPubSub: new () => ShareDB.PubSub }).MemoryPubSub;
  const pubsub = new MemoryPubSub();
  return {
    kind: 'memory',
    pubsub,
    ping: async () => {},
    // Backend.close() closes the pubsub it was given; nothing else holds resources here.
    close: async () => {},
  };
}
