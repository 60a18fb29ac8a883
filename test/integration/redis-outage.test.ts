/**
 * Redis going away and coming back. While it is down every instance keeps serving and
 * committing for its own clients; when it returns, instances resubscribe and re-deliver
 * what their subscribers missed from the store, so every client converges without anyone
 * typing again. /readyz never calls Redis ready while it is down.
 */
import assert from 'node:assert/strict';
import { ops } from '../../ot-types/index.js';
import { create, socketClient, submit, subscribe, type Doc } from '../helpers/clients.js';
import { redisServerAvailable, startTestRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import { waitFor } from '../helpers/wait.js';
import {
  assertConverged,
  createSharedDoc,
  subscribedDoc,
  totalAcked,
  useClusterPerTest,
  Writer,
} from '../helpers/multi-instance-harness.js';

interface Readiness {
  status: string;
  checks?: Record<string, string>;
}

async function readyz(url: string, query = ''): Promise<{ code: number; body: Readiness }> {
  const res = await fetch(`${url}/readyz${query}`, { signal: AbortSignal.timeout(5_000) });
  return { code: res.status, body: (await res.json()) as Readiness };
}

function items(doc: Doc): string[] {
  return (doc.data as { items: string[] }).items;
}

describe('Redis outage: three processes, one Redis stopped and restarted mid-run', function () {
  this.timeout(45_000);
  const startCluster = useClusterPerTest();

  it('instances keep committing, log the outage, and every client converges within seconds of Redis returning with no acknowledged op lost', async () => {
    const cluster = await startCluster({ instances: 3 });
    const redis = cluster.redis!;
    // Per instance one writer and one reader that never writes: a reader has no ack of its
    // own to reveal a gap, so after the outage only the catch-up can bring it up to date.
    const writerClients = [0, 1, 2].map((i) => cluster.client(i));
    const readerClients = [0, 1, 2].map((i) => cluster.client(i));
    await createSharedDoc(writerClients[0]!, 'notes', 'outage');
    const writerDocs = await Promise.all(writerClients.map((c) => subscribedDoc(c, 'notes', 'outage')));
    const readers = await Promise.all(readerClients.map((c) => subscribedDoc(c, 'notes', 'outage')));
    const writers = writerDocs.map((doc, i) => new Writer(`i${i}`, doc));
    for (const w of writers) w.start();
    await waitFor(() => totalAcked(writers) >= 30, { timeoutMs: 15_000, what: '30 acknowledged ops before the outage' });

    await redis.stop();
    const downAt = Date.now();
    const beforeOutage = writers.map((w) => w.acked.length);
    // Several seconds without Redis, during which every instance keeps committing.
    await waitFor(() => Date.now() - downAt >= 3_000 && writers.every((w, i) => w.acked.length >= beforeOutage[i]! + 10), {
      timeoutMs: 15_000,
      what: '3 s of outage and 10 acknowledged ops per instance during it',
    });
    const readiness = await Promise.all(cluster.urls.map((url) => readyz(url)));
    await Promise.all(writers.map((w) => w.stop()));

    for (const { code, body } of readiness) {
      assert.equal(code, 200, 'an instance without Redis still takes traffic');
      assert.equal(body.status, 'degraded');
      assert.match(body.checks!.pubsub!, /^redis down since /);
    }
    assert.equal((await readyz(cluster.urls[0]!, '?strict')).code, 503);
    // Clients sharing an instance saw each other live during the outage…
    for (let i = 0; i < 3; i++) {
      const last = writers[i]!.acked.at(-1)!;
      await waitFor(() => items(readers[i]!).includes(last), { timeoutMs: 5_000, what: `reader on instance ${i} has ${last}` });
    }
    // The last ops of the outage come from instance B alone. Readers on A and C never get
    // them live, and no later op will reveal the gap to them: only the catch-up can.
    const finalOps = ['final-B-1', 'final-B-2'];
    for (const token of finalOps) await submit(writerDocs[1]!, ops.insert(['items', 0], token));
    await waitFor(() => items(readers[1]!).includes('final-B-2'), { timeoutMs: 5_000, what: 'reader on B has final-B-2' });
    assert.ok(!items(readers[0]!).includes('final-B-2'), 'reader on A should not have B’s last outage op yet');
    assert.ok(!items(readers[2]!).includes('final-B-2'), 'reader on C should not have B’s last outage op yet');

    await redis.start();
    const upAt = Date.now();
    const docs = [...writerDocs, ...readers];
    await assertConverged(cluster.urls[2]!, 'notes', 'outage', docs, [...writers.flatMap((w) => w.acked), ...finalOps], 10_000);
    const convergedMs = Date.now() - upAt;
    assert.ok(convergedMs < 10_000, `converged ${convergedMs} ms after Redis returned`);
    assert.deepEqual(
      writers.flatMap((w) => w.errors.map((e) => e.message)),
      [],
    );

    for (let i = 0; i < 3; i++) {
      await waitFor(() => cluster.logged(i, 'redis back').length > 0, { timeoutMs: 5_000, what: `instance ${i} logs "redis back"` });
      assert.ok(cluster.logged(i, 'redis unavailable').length > 0, `instance ${i} logged the outage`);
      assert.ok(cluster.logged(i, 'redis catch-up done').length > 0, `instance ${i} logged its catch-up`);
    }
    await waitFor(async () => (await readyz(cluster.urls[1]!, '?strict')).code === 200, { what: 'instance B ready again' });

    // Live fan-out works again: an op on A reaches the reader on C without a catch-up.
    await submit(writerDocs[0]!, ops.insert(['items', 0], 'after-outage'));
    await waitFor(() => items(readers[2]!).includes('after-outage'), { timeoutMs: 5_000, what: 'live op from A at C' });
  });
});

describe('Redis outage: one in-process instance', function () {
  this.timeout(30_000);
  let redis: TestRedis | null = null;
  let server: TestServer | null = null;
  const closers: Array<() => void> = [];

  beforeEach(async function () {
    requireService(this, redisServerAvailable(), 'redis-server not installed');
    redis = await startTestRedis();
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await server?.close();
    server = null;
    await redis?.destroy();
    redis = null;
  });

  function client(url: string) {
    const c = socketClient(url);
    closers.push(() => c.close());
    return c;
  }

  it('commits do not wait for Redis, clients of the instance stay live, and /readyz reports Redis down', async () => {
    server = await startTestServer({ REDIS_URL: redis!.url, REDIS_PREFIX: `outage-${Date.now()}` });
    await waitFor(() => server!.pubsub.state().status === 'ready', { what: 'redis connected' });
    const a = client(server.url).connection.get('notes', 'live');
    const b = client(server.url).connection.get('notes', 'live');
    await subscribe(a);
    await create(a, { items: [] });
    await subscribe(b);

    await redis!.stop();
    await waitFor(() => server!.pubsub.state().status === 'down', { what: 'outage noticed' });
    const started = Date.now();
    await submit(a, ops.insert(['items', 0], 'during'));
    assert.ok(Date.now() - started < 1_000, `commit took ${Date.now() - started} ms without Redis`);
    await waitFor(() => items(b).includes('during'), { timeoutMs: 2_000, what: 'op delivered locally without Redis' });

    const down = await readyz(server.url);
    assert.equal(down.code, 200);
    assert.equal(down.body.status, 'degraded');
    assert.match(down.body.checks!.pubsub!, /^redis down since .*ECONNREFUSED|^redis down since /);
    assert.equal(down.body.checks!.store, 'ok');
    assert.equal((await readyz(server.url, '?strict')).code, 503);
    const metrics = (await (await fetch(`${server.url}/metrics.json`)).json()) as { pubsub: { status: string; publishFailures: number } };
    assert.equal(metrics.pubsub.status, 'down');
    assert.ok(metrics.pubsub.publishFailures >= 1);

    await redis!.start();
    await waitFor(async () => (await readyz(server!.url, '?strict')).code === 200, { timeoutMs: 10_000, what: 'ready again' });
    assert.equal(server.pubsub.state().outages, 1);
  });

  it('starts while Redis is down, serves its clients, and joins Redis when it appears', async () => {
    await redis!.stop();
    server = await startTestServer({ REDIS_URL: redis!.url });
    const doc = client(server.url).connection.get('notes', 'early');
    await subscribe(doc);
    await create(doc, { items: ['x'] });
    assert.notEqual((await readyz(server.url, '?strict')).code, 200);
    await redis!.start();
    await waitFor(() => server!.pubsub.state().status === 'ready', { timeoutMs: 10_000, what: 'redis connected' });
  });

  it('shuts down promptly while Redis is down', async () => {
    server = await startTestServer({ REDIS_URL: redis!.url });
    const doc = client(server.url).connection.get('notes', 'bye');
    await subscribe(doc);
    await create(doc, { n: 1 });
    await redis!.stop();
    await waitFor(() => server!.pubsub.state().status === 'down', { what: 'outage noticed' });
    const started = Date.now();
    const closing = server.close();
    server = null;
    await closing;
    assert.ok(Date.now() - started < 3_000, `close took ${Date.now() - started} ms`);
  });
});
