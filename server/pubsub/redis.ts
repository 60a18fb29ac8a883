import { createClient } from 'redis';
import RedisPubSub from 'sharedb-redis-pubsub';
import type ShareDB from 'sharedb';
import type { Logger } from '../ops/logger.js';
import type { PubSubHandle } from './index.js';

/**
 * ShareDB pub/sub over Redis (sharedb-redis-pubsub) with clients we create, so the
 * reconnect policy and outage logging are ours. Channels are prefixed so several
 * deployments can share one Redis.
 */
export async function openRedisPubSub(url: string, prefix: string, logger: Logger): Promise<PubSubHandle> {
  const reconnectStrategy = (retries: number) => Math.min(50 * 2 ** retries, 2_000);
  const client = createClient({ url, socket: { reconnectStrategy } });
  const observer = createClient({ url, socket: { reconnectStrategy } });
  let down = false;
  for (const [role, c] of [['client', client], ['observer', observer]] as const) {
    c.on('error', (err: Error) => {
      if (!down) logger.warn({ role, err: err.message }, 'redis unavailable');
      down = true;
    });
    c.on('ready', () => {
      if (down) logger.info({ role }, 'redis back');
      down = false;
    });
  }
  // sharedb-redis-pubsub is untyped: it takes {client, observer, prefix} and connects them.
  const pubsub: ShareDB.PubSub = new (RedisPubSub as unknown as new (options: object) => ShareDB.PubSub)({
    client,
    observer,
    prefix,
  });
  return {
    kind: 'redis',
    pubsub,
    ping: async () => {
      await client.ping();
    },
    close: async () => {
      // Backend.close() closes the pubsub (and with it both clients); nothing extra here.
    },
  };
}
