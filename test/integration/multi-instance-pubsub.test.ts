/**
 * The Redis pub/sub adapter on its own: ShareDB's pub/sub conformance suite
 * (`sharedb/test/pubsub`), and how two instances sharing one Redis see each other's
 * messages — exactly once, own echoes dropped, prefixes keeping deployments apart.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type ShareDB from 'sharedb';
import { createLogger } from '../../server/ops/logger.js';
import { openRedisPubSub } from '../../server/pubsub/redis.js';
import type { PubSubHandle } from '../../server/pubsub/index.js';
import { createMemoryDb } from '../../server/storage/memory.js';
import { Turn } from '../../server/turn.js';
import { redisServerAvailable, startTestRedis, type TestRedis } from '../helpers/redis-server.js';
import { requireService } from '../helpers/skip.js';
import { waitFor } from '../helpers/wait.js';

const require = createRequire(import.meta.url);
require('sharedb/test/setup.js');
const runPubSubSuite = require('sharedb/test/pubsub') as (create: (cb: (err: Error | null, pubsub?: unknown) => void) => void) => void;

type Stream = NodeJS.EventEmitter & { destroy(): void };
type PubSubLike = {
  subscribe(channel: string, cb: (err: Error | null, stream?: Stream) => void): void;
  publish(channels: string[], data: object, cb?: (err: Error | null) => void): void;
  close(cb?: (err?: Error | null) => void): void;
};

describe('Redis pub/sub adapter', function () {
  this.timeout(20_000);
  let redis: TestRedis | null = null;
  const logger = createLogger('silent');
  let n = 0;

  before(async function () {
    requireService(this, redisServerAvailable(), 'redis-server not installed');
    redis = await startTestRedis();
  });
  after(async () => {
    await redis?.destroy();
  });

  function open(prefix = `pubsub-${process.pid}-${++n}`, turn?: Turn): PubSubHandle {
    return openRedisPubSub({ url: redis!.url, prefix, logger, db: createMemoryDb() as unknown as ShareDB.DB, turn });
  }

  describe('ShareDB pub/sub conformance', function () {
    // Registered at load time, so `redis` is read when each test runs, not now.
    runPubSubSuite((callback) => callback(null, open().pubsub));
  });

  describe('two instances on one Redis', function () {
    const handles: PubSubHandle[] = [];
    afterEach(async () => {
      await Promise.all(
        handles.splice(0).map((h) => new Promise<void>((resolve) => (h.pubsub as unknown as PubSubLike).close(() => resolve()))),
      );
    });

    function instance(prefix: string, turn?: Turn): PubSubLike & { handle: PubSubHandle } {
      const handle = open(prefix, turn);
      handles.push(handle);
      return Object.assign(handle.pubsub as unknown as PubSubLike, { handle });
    }

    async function stream(pubsub: PubSubLike, channel: string): Promise<unknown[]> {
      const received: unknown[] = [];
      const s = await new Promise<Stream>((resolve, reject) => pubsub.subscribe(channel, (err, st) => (err ? reject(err) : resolve(st!))));
      s.on('data', (data: unknown) => received.push(data));
      return received;
    }

    /** Resolves once Redis executed the PUBLISH (the adapter calls back after its reply). */
    function publish(pubsub: PubSubLike, channel: string, data: object): Promise<void> {
      return new Promise((resolve, reject) => pubsub.publish([channel], data, (err) => (err ? reject(err) : resolve())));
    }

    async function ready(...instances: Array<{ handle: PubSubHandle }>): Promise<void> {
      await waitFor(() => instances.every((i) => i.handle.state().status === 'ready'), { what: 'connected to Redis' });
    }

    // Redis delivers to a subscriber in the order it executed the PUBLISHes. So once a
    // marker published *after* a message (whose PUBLISH Redis already answered) has arrived,
    // that message would have arrived too if it was going to: no sleeps needed.

    it('delivers a message once on each instance: locally at once, remotely through Redis, never its own echo', async () => {
      const prefix = `pair-${Date.now()}`;
      const a = instance(prefix);
      const b = instance(prefix);
      await ready(a, b);
      const onA = await stream(a, 'notes.d1');
      const onB = await stream(b, 'notes.d1');
      const markers = await stream(a, 'marker');
      await publish(a, 'notes.d1', { c: 'notes', d: 'd1', v: 0, op: [] });
      await publish(b, 'notes.d1', { c: 'notes', d: 'd1', v: 1, op: [] });
      await publish(b, 'marker', { m: 1 });
      await waitFor(() => markers.length === 1 && onB.length === 2, { what: 'marker at A, both messages at B' });
      assert.deepEqual(
        onA.map((m) => (m as { v: number }).v),
        [0, 1],
      );
      assert.deepEqual(onB.map((m) => (m as { v: number }).v).sort(), [0, 1]);
    });

    it('keeps deployments with different prefixes apart', async () => {
      const stamp = Date.now();
      const left = instance(`left-${stamp}`);
      const right = instance(`right-${stamp}`);
      const rightToo = instance(`right-${stamp}`);
      await ready(left, right, rightToo);
      const onRight = await stream(right, 'notes.d1');
      const markers = await stream(right, 'marker');
      await publish(left, 'notes.d1', { from: 'left' });
      await publish(rightToo, 'notes.d1', { from: 'right' });
      await publish(rightToo, 'marker', { m: 1 });
      await waitFor(() => markers.length === 1, { what: 'marker' });
      assert.deepEqual(onRight, [{ from: 'right' }]);
    });

    it("with group commit, an op reaches Redis only after the turn's COMMIT, and never if the COMMIT failed", async () => {
      const prefix = `turn-${Date.now()}`;
      const turn = new Turn();
      const a = instance(prefix, turn);
      const b = instance(prefix);
      const c = instance(prefix);
      await ready(a, b, c);
      const onB = await stream(b, 'notes.d1');
      const markers = await stream(b, 'marker');
      // The Redis client is the adapter's (sharedb-redis-pubsub publishes with EVAL).
      const client = (a as unknown as { client: { eval: (...args: unknown[]) => Promise<unknown> } }).client;
      const events: string[] = [];
      const evalScript = client.eval.bind(client);
      client.eval = (...args: unknown[]) => {
        events.push('redis');
        return evalScript(...args);
      };

      turn.beforeSend(() => events.push('commit'));
      const published = publish(a, 'notes.d1', { c: 'notes', d: 'd1', v: 0, op: [] });
      assert.deepEqual(events, [], 'nothing went to Redis while the turn was open');
      await published;
      assert.deepEqual(events, ['commit', 'redis']);
      await waitFor(() => onB.length === 1, { what: 'the op at the other instance' });

      turn.beforeSend(() => {
        throw new Error('disk I/O error');
      });
      await publish(a, 'notes.d1', { c: 'notes', d: 'd1', v: 1, op: [] }); // answered, not sent
      await publish(c, 'marker', { m: 1 });
      await waitFor(() => markers.length === 1, { what: 'marker' });
      assert.deepEqual(events, ['commit', 'redis'], 'the op of the failed turn never went to Redis');
      assert.deepEqual(
        onB.map((m) => (m as { v: number }).v),
        [0],
      );
    });
  });
});
