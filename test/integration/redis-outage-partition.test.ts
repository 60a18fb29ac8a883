/**
 * Partial outages, each healed by one mechanism alone (in a full outage both run):
 *
 * - Only instance A's *publishing* connection is cut (a partition around A for writes).
 *   No subscriber notices an outage, so no catch-up runs anywhere; what heals the others is
 *   A re-publishing, once Redis is reachable, the newest op of every document it could not
 *   publish. A subscriber that then sees a version gap fetches the rest.
 * - Only instance B's *subscribing* connection is cut. A publishes normally, into the void
 *   for B; nothing is left to re-publish. What heals B's subscribers is B's catch-up from the
 *   store after its subscriber reconnects — including a subscription made during the cut.
 *
 * Two backends in this process share one store; one connection goes through a TCP proxy
 * the test can cut.
 */
import assert from 'node:assert/strict';
import { createServer, Socket, type Server } from 'node:net';
import type ShareDB from 'sharedb';
import { createClient } from 'redis';
import { createBackend, type TandemBackend } from '../../server/backend.js';
import { createLogger } from '../../server/ops/logger.js';
import { TandemRedisPubSub, type RedisConnection } from '../../server/pubsub/redis.js';
import { createMemoryDb } from '../../server/storage/memory.js';
import { DEFAULT_OP_LIMITS, ops } from '../../ot-types/index.js';
import { create, fetchDoc, submit, subscribe } from '../helpers/clients.js';
import { redisServerAvailable, startTestRedis, type TestRedis } from '../helpers/redis-server.js';
import { requireService } from '../helpers/skip.js';
import { waitFor } from '../helpers/wait.js';

/** A TCP proxy to Redis that can be cut (refuse and drop connections) and restored. */
class CuttableProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  static async start(target: number): Promise<CuttableProxy> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const proxy = new CuttableProxy(port, target);
    await proxy.restore();
    return proxy;
  }

  async restore(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

describe('Redis partial outage: one connection of one instance cut', function () {
  this.timeout(20_000);
  let redis: TestRedis | null = null;
  let proxy: CuttableProxy | null = null;
  const backends: TandemBackend[] = [];
  const logger = createLogger(process.env.LOG_LEVEL ?? 'silent');

  beforeEach(async function () {
    requireService(this, redisServerAvailable(), 'redis-server not installed');
    redis = await startTestRedis();
    proxy = await CuttableProxy.start(redis.port);
  });
  afterEach(async () => {
    for (const b of backends.splice(0)) await b.closeAsync().catch(() => undefined);
    await proxy?.cut();
    await redis?.destroy();
  });

  /** Two backends on one store: A and B, with one of the four Redis connections proxied. */
  async function pair(proxied: 'publisher of A' | 'subscriber of B') {
    const db = createMemoryDb() as unknown as ShareDB.DB;
    const prefix = `partition-${Date.now()}`;
    const socket = { reconnectStrategy: () => 50 };
    const via = `redis://127.0.0.1:${proxy!.port}`;
    const connection = (url: string, publisher: boolean) =>
      createClient({ url, disableOfflineQueue: publisher, socket }) as unknown as RedisConnection;
    const options = { url: redis!.url, prefix, logger, db };
    const pubsubA = new TandemRedisPubSub(
      connection(proxied === 'publisher of A' ? via : redis!.url, true),
      connection(redis!.url, false),
      options,
    );
    const pubsubB = new TandemRedisPubSub(
      connection(redis!.url, true),
      connection(proxied === 'subscriber of B' ? via : redis!.url, false),
      options,
    );
    const common = { db, limits: DEFAULT_OP_LIMITS, logger };
    const a = createBackend({ ...common, pubsub: pubsubA as unknown as ShareDB.PubSub });
    const b = createBackend({ ...common, pubsub: pubsubB as unknown as ShareDB.PubSub });
    backends.push(a, b);
    await waitFor(() => pubsubA.state.status === 'ready' && pubsubB.state.status === 'ready', { what: 'both connected' });
    return { a, b, pubsubA, pubsubB };
  }

  it('subscriber connection cut: the catch-up re-delivers from the store what was published meanwhile', async () => {
    const { a, b, pubsubA, pubsubB } = await pair('subscriber of B');
    const writer = a.connect().get('notes', 's1');
    const reader = b.connect().get('notes', 's1');
    await subscribe(writer);
    await create(writer, { items: [] });
    await subscribe(reader);
    // One live op first, so B knows the version it last relayed on s1 (the catch-up then
    // re-delivers every missed op; without it, it re-delivers the newest and lets the
    // client fetch the rest).
    await submit(writer, ops.insert(['items', 0], 'before'));
    await waitFor(() => reader.version === 2, { what: 'live op before the cut' });
    const other = a.connect().get('notes', 's2');
    await subscribe(other);
    await create(other, { items: [] });

    await proxy!.cut();
    await waitFor(() => pubsubB.state.status === 'down', { what: 'B notices its subscriber is gone' });
    for (const token of ['cut-1', 'cut-2', 'cut-3']) await submit(writer, ops.insert(['items', 0], token));
    // Subscribing on B during the cut is served from the store at once…
    const lateReader = b.connect().get('notes', 's2');
    await subscribe(lateReader);
    // …and what A writes afterwards reaches it only through the catch-up.
    await submit(other, ops.insert(['items', 0], 'after-subscribe'));
    assert.equal(pubsubA.state.status, 'ready');
    assert.equal(reader.version, 2);
    assert.equal(lateReader.version, 1);

    await proxy!.restore();
    await waitFor(() => reader.version === 5 && lateReader.version === 2, {
      timeoutMs: 10_000,
      what: `readers caught up (now ${reader.version}, ${lateReader.version})`,
    });
    assert.deepEqual(reader.data, writer.data);
    assert.deepEqual(lateReader.data, { items: ['after-subscribe'] });
    assert.equal(pubsubB.state.status, 'ready');
    // s1: the three missed ops; s2 (no op relayed since subscribing): its newest op.
    assert.equal(pubsubB.state.catchUpOps, 4);
    assert.equal(pubsubA.state.republished, 0);
  });

  it('re-publishes what it could not publish once Redis is reachable, and remote subscribers converge', async () => {
    const { a, b, pubsubA, pubsubB } = await pair('publisher of A');
    const writer = a.connect().get('notes', 'p1');
    const reader = b.connect().get('notes', 'p1');
    await subscribe(writer);
    await create(writer, { items: [] });
    await subscribe(reader);
    await submit(writer, ops.insert(['items', 0], 'before'));
    await waitFor(() => reader.version === 2, { what: 'live op before the cut' });

    await proxy!.cut();
    await waitFor(() => pubsubA.state.status === 'down', { what: 'A notices its publisher is gone' });
    for (const token of ['cut-1', 'cut-2', 'cut-3']) await submit(writer, ops.insert(['items', 0], token));
    assert.equal(writer.version, 5);
    assert.equal(pubsubB.state.status, 'ready', 'B sees no outage, so it has nothing to catch up on its own');
    assert.equal(reader.version, 2);

    await proxy!.restore();
    await waitFor(() => reader.version === 5, { timeoutMs: 10_000, what: `reader at version 5 (now ${reader.version})` });
    assert.deepEqual(reader.data, writer.data);
    // Counted when Redis answers A's PUBLISH, which may come after B got the message.
    await waitFor(() => pubsubA.state.republished >= 1, { what: 'A counted its re-publish' });
    assert.equal(pubsubA.state.outages, 1);
    const stored = a.connect().get('notes', 'p1');
    await fetchDoc(stored);
    assert.deepEqual(stored.data, { items: ['cut-3', 'cut-2', 'cut-1', 'before'] });
  });
});
