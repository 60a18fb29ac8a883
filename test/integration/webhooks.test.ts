/**
 * Webhooks (server/webhooks/): every committed op reaches the receiver at least once, signed,
 * batched per document; failures are retried with the same delivery id and counted in
 * /metrics; a receiver that hangs does not hold commits; and what was acknowledged before a
 * SIGKILL is delivered after the restart.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyWebhookSignature } from '../../server/webhooks/signature.js';
import { create, stockClient, submit, type Doc } from '../helpers/clients.js';
import { startServerProcess } from '../helpers/process-server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { PG_TEST_URL, postgresUnavailable, TestSchemas } from '../helpers/postgres.js';
import { requireService } from '../helpers/skip.js';

const SECRET = 'webhook-test-secret-0123456789abcdef';

interface Delivery {
  id: string;
  signed: boolean;
  body: {
    deliveryId: string;
    collection: string;
    id: string;
    from: number;
    to: number;
    ops: Array<{ v: number; op?: unknown; create?: unknown; del?: boolean }>;
  };
}

/** A webhook receiver on a free port: answers per `mode`, records what it was sent. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  /** Delivery ids answered 500 in 'fail' mode. */
  readonly refused: string[] = [];
  mode: 'ok' | 'fail' | 'hold' = 'ok';
  private held: Array<() => void> = [];
  private server: Server | null = null;
  url = '';

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      req.on('end', () => {
        const answer = () => {
          if (this.mode === 'fail') {
            this.refused.push(String(req.headers['tandem-delivery']));
            res.writeHead(500).end();
            return;
          }
          this.deliveries.push({
            id: String(req.headers['tandem-delivery']),
            signed: verifyWebhookSignature(SECRET, req.headers['tandem-signature'] as string | undefined, text),
            body: JSON.parse(text) as Delivery['body'],
          });
          res.writeHead(204).end();
        };
        if (this.mode === 'hold') this.held.push(answer);
        else answer();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  release(): void {
    this.mode = 'ok';
    for (const answer of this.held.splice(0)) answer();
  }

  /** Every delivered op, de-duplicated by document and version (as receivers are told to). */
  delivered(): Map<string, unknown> {
    const ops = new Map<string, unknown>();
    for (const d of this.deliveries) for (const op of d.body.ops) ops.set(`${d.body.collection}/${d.body.id}@${op.v}`, op);
    return ops;
  }

  async close(): Promise<void> {
    this.release();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function webhookEnv(receiver: Receiver): Record<string, string> {
  return { WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET, WEBHOOK_BATCH_MS: '20', WEBHOOK_RETRY_MS: '20', OPS_PER_MINUTE: '1000000' };
}

describe('webhooks', function () {
  this.timeout(60_000);
  let receiver: Receiver;
  let server: TestServer | null = null;
  const closers: Array<() => unknown> = [];

  beforeEach(async () => {
    receiver = new Receiver();
    await receiver.start();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await server?.close();
    server = null;
    await receiver.close();
  });

  async function typeInto(url: string, ids: string[], opsEach: number): Promise<Doc[]> {
    const client = stockClient(url);
    closers.push(() => client.close());
    const docs: Doc[] = [];
    for (const id of ids) {
      const doc = client.connection.get('notes', id);
      await create(doc, { n: 0 });
      docs.push(doc);
    }
    await Promise.all(
      docs.map(async (doc) => {
        for (let i = 0; i < opsEach; i++) await submit(doc, ['n', { ena: 1 }]);
      }),
    );
    return docs;
  }

  it('delivers every committed op, signed, one document per delivery, in version ranges', async () => {
    server = await startTestServer({ ...webhookEnv(receiver), WEBHOOK_MAX_OPS: '25' });
    await typeInto(server.url, ['a', 'b', 'c'], 60);
    const expected = 3 * 61;
    await waitFor(() => receiver.delivered().size === expected, { what: `${expected} ops delivered (${receiver.delivered().size})` });
    for (const d of receiver.deliveries) {
      assert.ok(d.signed, 'the signature verifies with WEBHOOK_SECRET');
      assert.equal(d.id, d.body.deliveryId);
      assert.ok(d.body.ops.length <= 25 && d.body.ops.length > 0);
      assert.deepEqual(
        d.body.ops.map((op) => op.v),
        Array.from({ length: d.body.to - d.body.from }, (_, i) => d.body.from + i),
      );
    }
    assert.ok(
      receiver.deliveries.every((d) => d.body.ops[0]!.v > 0 || d.body.ops[0]!.create),
      'version 0 is the create',
    );
    const one = receiver.deliveries[0]!;
    assert.equal(verifyWebhookSignature('another-secret-0123456789abcdef-xx', undefined, JSON.stringify(one.body)), false);
    const metrics = (await (await fetch(`${server.url}/metrics.json`)).json()) as { webhooks: { opsDelivered: number; backlog: number } };
    assert.ok(metrics.webhooks.opsDelivered >= expected);
  });

  it('a failing receiver gets the same range again (same delivery id) until it answers; failures are counted', async () => {
    server = await startTestServer(webhookEnv(receiver));
    receiver.mode = 'fail';
    await typeInto(server.url, ['f'], 10);
    const failures = async () =>
      ((await (await fetch(`${server!.url}/metrics.json`)).json()) as { webhooks: { failed: number } }).webhooks.failed;
    await waitFor(async () => (await failures()) >= 3, { what: 'three failed deliveries' });
    receiver.mode = 'ok';
    await waitFor(() => receiver.delivered().size === 11, { what: 'all 11 ops once the receiver answers' });
    assert.ok(receiver.refused.length >= 3);
    assert.deepEqual(new Set(receiver.refused), new Set([receiver.deliveries[0]!.id]), 'every attempt of the range had one id');
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /^tandem_webhook_failures_total [1-9]\d*$/m);
    assert.match(text, /^tandem_webhook_ops_delivered_total 11$/m);
  });

  it('a receiver that does not answer holds no commit: ops are acknowledged meanwhile (ack times printed), and delivered once it answers', async () => {
    server = await startTestServer({ ...webhookEnv(receiver), WEBHOOK_TIMEOUT_MS: '60000' });
    const [doc] = await typeInto(server.url, ['h'], 0);
    /** Median ack time of 50 ops, ms (printed, not asserted: this machine's speed drifts). */
    const ackMedian = async () => {
      const times: number[] = [];
      for (let i = 0; i < 50; i++) {
        const started = performance.now();
        await submit(doc!, ['n', { ena: 1 }]);
        times.push(performance.now() - started);
      }
      return times.sort((x, y) => x - y)[25]!;
    };
    const answering = await ackMedian();
    await waitFor(() => receiver.delivered().size === 51, { what: 'the first 51 ops delivered' });
    receiver.mode = 'hold';
    await submit(doc!, ['n', { ena: 1 }]);
    await waitFor(() => (receiver as unknown as { held: unknown[] }).held.length > 0, { what: 'a delivery waiting at the receiver' });
    const hanging = await ackMedian();
    assert.equal(doc!.version, 102, '50 more ops acknowledged while the delivery hangs');
    console.log(`      ack median: ${answering.toFixed(2)} ms with the receiver answering, ${hanging.toFixed(2)} ms while it hangs`);
    receiver.release();
    await waitFor(() => receiver.delivered().size === 102, { what: 'all 102 ops' });
  });

  it('what was acknowledged before a SIGKILL is delivered after the restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-webhooks-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const env = { ...webhookEnv(receiver), DB_URL: `sqlite:${join(dir, 'hooks.db')}` };
    receiver.mode = 'fail';
    const first = await startServerProcess(env);
    const client = stockClient(first.url);
    const doc = client.connection.get('notes', 'k');
    await create(doc, { n: 0 });
    for (let i = 0; i < 20; i++) await submit(doc, ['n', { ena: 1 }]);
    client.close();
    await first.kill();
    receiver.mode = 'ok';
    const second = await startServerProcess(env);
    closers.push(() => second.stop());
    await waitFor(() => receiver.delivered().size === 21, { what: 'the 21 acknowledged ops, after the restart' });
  });
});

describe('webhooks on PostgreSQL: two instances on one schema', function () {
  this.timeout(60_000);
  const schemas = new TestSchemas();
  let receiver: Receiver;
  const servers: TestServer[] = [];
  const closers: Array<() => unknown> = [];
  before(async function () {
    const reason = await postgresUnavailable();
    requireService(this, reason === null, reason ?? '');
  });
  beforeEach(async () => {
    receiver = new Receiver();
    await receiver.start();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    for (const server of servers.splice(0)) await server.close();
    await receiver.close();
  });
  after(async () => {
    await schemas.dropAll();
  });

  it('each instance delivers what it committed; a restarted instance delivers what was left behind', async () => {
    const url = new URL(PG_TEST_URL);
    url.searchParams.set('schema', schemas.name());
    const env = { ...webhookEnv(receiver), DB_URL: url.toString() };
    receiver.mode = 'fail';
    const first = await startTestServer(env);
    servers.push(first);
    const second = await startTestServer(env);
    servers.push(second);
    const clients = [stockClient(first.url), stockClient(second.url)];
    for (const client of clients) closers.push(() => client.close());
    for (const [n, client] of clients.entries()) {
      const doc = client.connection.get('notes', `pg-${n}`);
      await create(doc, { n: 0 });
      for (let i = 0; i < 10; i++) await submit(doc, ['n', { ena: 1 }]);
    }
    // Both instances' deliveries fail; the first stops (its cursors stay behind in PostgreSQL).
    await waitFor(() => receiver.refused.length >= 2, { what: 'failed deliveries' });
    await servers.shift()!.close();
    receiver.mode = 'ok';
    await waitFor(() => receiver.delivered().size === 11, { what: "the second instance's 11 ops" });
    servers.push(await startTestServer(env));
    await waitFor(() => receiver.delivered().size === 22, { what: "the first instance's 11 ops, after its restart" });
    assert.ok(receiver.deliveries.every((d) => d.signed));
  });
});
