/**
 * Hot document: many clients of one instance writing to one document at once. ShareDB
 * commits optimistically, so concurrent submits race and the losers retry (fetch,
 * transform, commit again); TandemBackend queues submits per document so they do not.
 * The figure is `commitRetries` in /metrics; this test asserts the count, not the speed.
 *
 * The store answers after a timer, as a networked store (MongoDB) does: with an embedded
 * store answering on the next tick, submits from different sockets hardly overlap at all,
 * and "zero retries" would prove nothing. The control case below shows the same load does
 * retry without the queue.
 */
import assert from 'node:assert/strict';
import type ShareDB from 'sharedb';
import type { SocketConnection } from '../../client/connect.js';
import { ops } from '../../ot-types/index.js';
import { create, socketClient, subscribe, whenNothingPending, type Doc } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { assertConverged } from '../helpers/multi-instance-harness.js';

const WRITERS = 50;
const OPS_EACH = 4;

/** Delays every store answer by a timer turn, so concurrent submits really interleave. */
function addStoreLatency(db: ShareDB.DB, ms: number): void {
  const methods = ['getSnapshot', 'getSnapshotBulk', 'getOps', 'getOpsBulk', 'getOpsToSnapshot', 'commit'] as const;
  const target = db as unknown as Record<string, (...args: unknown[]) => void>;
  for (const name of methods) {
    const original = target[name]!.bind(db);
    target[name] = (...args: unknown[]) => {
      const callback = args.at(-1) as (...results: unknown[]) => void;
      original(...args.slice(0, -1), (...results: unknown[]) => setTimeout(() => callback(...results), ms));
    };
  }
}

function submitOne(doc: Doc, token: string): Promise<void> {
  return new Promise((resolve, reject) => doc.submitOp(ops.insert(['items', 0], token), {}, (err) => (err ? reject(err) : resolve())));
}

interface Metrics {
  commits: number;
  commitRetries: number;
}

async function metrics(server: TestServer): Promise<Metrics> {
  return (await (await fetch(`${server.url}/metrics.json`)).json()) as Metrics;
}

describe('hot document: 50 concurrent writers on one document through one instance', function () {
  this.timeout(30_000);
  let server: TestServer | null = null;
  const clients: SocketConnection[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.close();
    server = null;
  });

  /** Every writer submits OPS_EACH inserts at once; resolves with the tokens, all acknowledged. */
  async function hammer(serialize: boolean): Promise<{ docs: Doc[]; tokens: string[]; before: Metrics; after: Metrics }> {
    server = await startTestServer();
    server.backend.serializeSubmits = serialize;
    addStoreLatency(server.backend.db, 1);
    const docs: Doc[] = [];
    for (let i = 0; i < WRITERS; i++) {
      const client = socketClient(server.url);
      clients.push(client);
      docs.push(client.connection.get('hot', 'doc'));
    }
    await subscribe(docs[0]!);
    await create(docs[0]!, { items: [] });
    await Promise.all(docs.slice(1).map(subscribe));
    const before = await metrics(server);

    const tokens: string[] = [];
    const failures: string[] = [];
    // Round by round: a ShareDB client composes ops submitted in one tick into one, so
    // each round is one op from each of the 50 writers, all in flight together.
    for (let round = 0; round < OPS_EACH; round++) {
      docs.forEach((doc, i) => {
        const token = `w${i}:${round}`;
        doc.submitOp(ops.insert(['items', 0], token), {}, (err) => (err ? failures.push(err.message) : tokens.push(token)));
      });
      await Promise.all(docs.map(whenNothingPending));
    }
    assert.deepEqual(failures, []);
    const after = await metrics(server);
    return { docs, tokens, before, after };
  }

  it('commits every op with zero commit retries (per-document submit queue)', async () => {
    const { docs, tokens, before, after } = await hammer(true);
    assert.equal(tokens.length, WRITERS * OPS_EACH);
    assert.equal(after.commits - before.commits, WRITERS * OPS_EACH);
    assert.equal(after.commitRetries - before.commitRetries, 0, 'commit retries on the hot document');
    await assertConverged(server!.url, 'hot', 'doc', docs, tokens);
  });

  it("a submit ShareDB throws on answers with an error and does not block the document's queue", async () => {
    server = await startTestServer();
    const connection = server.backend.connect();
    const doc = connection.get('hot', 'throws');
    await subscribe(doc);
    await create(doc, { items: [] });
    // ShareDB builds its SubmitRequest from the op synchronously; an undefined op throws there.
    const agent = (connection as unknown as { agent: Parameters<TestServer['backend']['submit']>[0] }).agent;
    const err = await new Promise<unknown>((resolve) =>
      server!.backend.submit(agent, 'hot', 'throws', undefined as never, {}, (e) => resolve(e)),
    );
    assert.equal((err as { code?: string }).code, 'ERR_MESSAGE_BADLY_FORMED');
    await submitOne(doc, 'after');
    assert.deepEqual(doc.data, { items: ['after'] });
    assert.equal(server.backend.stats.inFlight, 0);
    connection.close();
  });

  it('control: the same load without the queue does retry, and /metrics counts it', async () => {
    const { docs, tokens, before, after } = await hammer(false);
    assert.equal(after.commits - before.commits, WRITERS * OPS_EACH);
    assert.ok(after.commitRetries - before.commitRetries > 0, `expected retries without the queue, got ${after.commitRetries}`);
    await waitFor(() => server!.backend.stats.inFlight === 0, { what: 'no submit in flight' });
    await assertConverged(server!.url, 'hot', 'doc', docs, tokens);
  });
});
