/**
 * GET /metrics in Prometheus' text format, read with a Prometheus text-format parser: every
 * family is there, and the figures move under load — ops by collection, commit and
 * submit→ack histograms, refusals by code, clients by transport, subscribed documents, pub/sub
 * publishes, Redis and store health through an outage and its catch-up, event-loop delay and
 * GC pauses. The JSON figures stay at /metrics.json.
 */
import assert from 'node:assert/strict';
import parsePrometheusTextFormat, { type PrometheusFamily, type PrometheusSample } from 'parse-prometheus-text-format';
import { ops } from '../../ot-types/index.js';
import { create, socketClient, stockClient, submit, subscribe, type Doc } from '../helpers/clients.js';
import { redisServerAvailable, startTestRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import { waitFor } from '../helpers/wait.js';

const FAMILIES = [
  'tandem_ops_committed_total',
  'tandem_submits_rejected_total',
  'tandem_submits_duplicate_total',
  'tandem_commit_retries_total',
  'tandem_refusals_total',
  'tandem_commit_duration_seconds',
  'tandem_submit_ack_duration_seconds',
  'tandem_submits_in_flight',
  'tandem_agents',
  'tandem_connected_clients',
  'tandem_subscribed_documents',
  'tandem_pubsub_published_total',
  'tandem_pubsub_publish_failures_total',
  'tandem_pubsub_republished_total',
  'tandem_pubsub_outages_total',
  'tandem_pubsub_catch_ups_total',
  'tandem_pubsub_catch_up_ops_total',
  'tandem_pubsub_up',
  'tandem_store_up',
  'tandem_store_group_commit',
  'tandem_store_wal_checkpoints',
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_gc_duration_seconds',
  'process_cpu_seconds_total',
  'nodejs_heap_size_used_bytes',
];

class Scrape {
  private readonly families: Map<string, PrometheusFamily>;
  constructor(text: string) {
    this.families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  }

  has(name: string): boolean {
    return this.families.has(name);
  }

  /** The sample of `name` whose labels include `labels` (undefined when none). */
  sample(name: string, labels: Record<string, string> = {}): PrometheusSample | undefined {
    return this.families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  }

  /** A counter's or gauge's value (0 when the labelled sample does not exist yet). */
  value(name: string, labels: Record<string, string> = {}): number {
    return Number(this.sample(name, labels)?.value ?? 0);
  }

  /** A histogram's observation count (the parser gives labelled histograms only their buckets: +Inf is the count). */
  count(name: string): number {
    const sample = this.sample(name);
    return Number(sample?.count ?? sample?.buckets?.['+Inf'] ?? 0);
  }
}

async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return new Scrape(await res.text());
}

describe('metrics: GET /metrics in Prometheus text format', function () {
  this.timeout(60_000);
  let redis: TestRedis | null = null;
  let server: TestServer | null = null;
  const closers: Array<() => void> = [];

  before(function () {
    requireService(this, redisServerAvailable(), 'redis-server (apt-get install redis-server) for the pub/sub figures');
  });

  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await server?.close();
    server = null;
    await redis?.destroy();
    redis = null;
  });

  it('has every figure, and they move under load, through a Redis outage and on refusals', async () => {
    redis = await startTestRedis();
    // A small document limit: an op over it is refused inside ShareDB's submit (TANDEM_DOC_TOO_LARGE).
    server = await startTestServer({ REDIS_URL: redis.url, MAX_DOC_BYTES: '65536' });
    const { url } = server;
    const before = await scrape(url);
    for (const name of FAMILIES.filter((n) => !n.startsWith('tandem_store_pool'))) assert.ok(before.has(name), `${name} is exposed`);

    // Two socket.io clients and one stock ShareDB client over /sharedb, on two collections.
    const a = socketClient(url);
    const b = socketClient(url);
    const stock = stockClient(url);
    closers.push(
      () => a.close(),
      () => b.close(),
      () => stock.close(),
    );
    const notes = a.connection.get('notes', 'n1');
    const tasks = b.connection.get('tasks', 't1');
    const watched = stock.connection.get('notes', 'n1');
    await create(notes, { text: '', n: 0 });
    await create(tasks, { done: 0 });
    await subscribe(notes);
    await subscribe(tasks);
    await subscribe(watched);
    const OPS = 100;
    const typing = async (doc: Doc, op: () => unknown) => {
      for (let i = 0; i < OPS; i++) await submit(doc, op());
    };
    await Promise.all([typing(notes, () => ops.textInsert(['text'], 0, 'x')), typing(tasks, () => ops.add(['done'], 1))]);
    // A refused op: it would make the document too large.
    await assert.rejects(submit(notes, ops.textInsert(['text'], 0, 'y'.repeat(70_000))), { code: 'TANDEM_DOC_TOO_LARGE' });

    const loaded = await scrape(url);
    assert.ok(loaded.value('tandem_ops_committed_total', { collection: 'notes' }) >= OPS + 1);
    assert.ok(loaded.value('tandem_ops_committed_total', { collection: 'tasks' }) >= OPS + 1);
    for (const histogram of ['tandem_commit_duration_seconds', 'tandem_submit_ack_duration_seconds']) {
      assert.ok(loaded.count(histogram) - before.count(histogram) >= 2 * OPS + 2, `${histogram} counted every commit`);
    }
    assert.equal(loaded.value('tandem_submits_rejected_total', { code: 'TANDEM_DOC_TOO_LARGE' }), 1, 'the rejection, by code');
    assert.equal(
      loaded.value('tandem_refusals_total', { code: 'TANDEM_DOC_TOO_LARGE', action: 'op' }),
      1,
      'the refusal, by code and action',
    );
    assert.equal(loaded.value('tandem_connected_clients', { transport: 'socket.io' }), 2);
    assert.equal(loaded.value('tandem_connected_clients', { transport: 'sharedb-ws' }), 1);
    assert.ok(loaded.value('tandem_agents') >= 3);
    assert.equal(loaded.value('tandem_subscribed_documents'), 2);
    assert.ok(loaded.value('tandem_pubsub_published_total') - before.value('tandem_pubsub_published_total') >= 2 * OPS + 2);
    assert.equal(loaded.value('tandem_pubsub_up', { kind: 'redis', status: 'ready' }), 1);
    assert.equal(loaded.value('tandem_store_up', { kind: 'sqlite' }), 1);
    assert.equal(loaded.value('tandem_store_group_commit', { state: 'on' }), 1);
    assert.equal(loaded.value('tandem_store_wal_checkpoints', { mode: 'background' }), 1);
    assert.ok(loaded.value('process_cpu_seconds_total') > 0);

    // GC pauses: garbage made here (the server runs in this process) is collected and timed.
    await waitFor(
      async () => {
        let garbage: number[][] = [];
        for (let i = 0; i < 200; i++) garbage.push(new Array(10_000).fill(i));
        garbage = [];
        return (await scrape(url)).count('nodejs_gc_duration_seconds') > 0 || garbage.length > 0;
      },
      { what: 'a GC pause to be recorded' },
    );
    assert.ok(Number((await scrape(url)).sample('nodejs_eventloop_lag_p99_seconds')?.value) > 0, 'event-loop delay is measured');

    // Redis goes away: pub/sub down, an outage counted; it comes back: up again, a catch-up counted.
    await redis.stop();
    await submit(notes, ops.textInsert(['text'], 0, 'offline'));
    await waitFor(
      async () => {
        const s = await scrape(url);
        return s.value('tandem_pubsub_up', { kind: 'redis' }) === 0 && s.value('tandem_pubsub_outages_total') >= 1 ? s : null;
      },
      { timeoutMs: 15_000, what: 'the outage in /metrics' },
    );
    await redis.start();
    const recovered = await waitFor(
      async () => {
        const s = await scrape(url);
        return s.value('tandem_pubsub_up', { kind: 'redis', status: 'ready' }) === 1 && s.value('tandem_pubsub_catch_ups_total') >= 1
          ? s
          : null;
      },
      { timeoutMs: 20_000, what: 'the recovery in /metrics' },
    );
    assert.ok(recovered && recovered.value('tandem_pubsub_outages_total') >= 1);

    // The JSON figures are still served for the load tool.
    const json = (await (await fetch(`${url}/metrics.json`)).json()) as { commits: number };
    assert.ok(json.commits >= 2 * OPS + 3);
    void watched;
  });
});
