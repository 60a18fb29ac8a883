/**
 * Graceful drain: on SIGTERM an instance stops accepting, tells its socket.io clients to
 * reconnect elsewhere (DRAIN_EVENT, then a server-side disconnect), lets the commits it
 * already accepted finish and publish, and only then closes pub/sub and store and exits 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { io as ioClient } from 'socket.io-client';
import { DRAIN_EVENT } from '../../client/protocol.js';
import { ops } from '../../ot-types/index.js';
import { create, socketClient, subscribe } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { pendingTimersSince, timerMark } from '../helpers/timer-origins.js';
import { waitFor } from '../helpers/wait.js';
import {
  assertConverged,
  createSharedDoc,
  storeSnapshot,
  subscribedDoc,
  totalAcked,
  useClusterPerTest,
  Writer,
} from '../helpers/multi-instance-harness.js';

describe('drain: SIGTERM on one of two instances', function () {
  this.timeout(45_000);
  const startCluster = useClusterPerTest();

  it('moves its clients to the other instance, keeps every acknowledged op and exits 0', async () => {
    const cluster = await startCluster({ instances: 2 });
    const clients = [0, 0, 0, 1, 1].map((i) => cluster.client(i));
    await createSharedDoc(clients[3]!, 'notes', 'drain');
    const docs = await Promise.all(clients.map((c) => subscribedDoc(c, 'notes', 'drain')));
    const writers = docs.map((doc, i) => new Writer(`w${i}`, doc, 3));
    for (const w of writers) w.start();
    await waitFor(() => totalAcked(writers) >= 40, { timeoutMs: 15_000, what: '40 acknowledged ops before SIGTERM' });

    const [a, b] = cluster.servers as [(typeof cluster.servers)[0], (typeof cluster.servers)[0]];
    const perWriter = writers.map((w) => w.acked.length);
    const exitCode = await a.stop(); // SIGTERM, resolves on exit
    assert.equal(exitCode, 0);
    assert.equal(cluster.logged(0, 'draining').length, 1);
    assert.equal(cluster.logged(0, 'tandem stopped').length, 1);
    assert.equal(cluster.logged(0, 'shutdown timeout with commits in flight').length, 0);

    await waitFor(
      () =>
        clients.every((c) => c.connection.state === 'connected' && c.shim.url === b.url) &&
        writers.every((w, i) => w.acked.length >= perWriter[i]! + 5),
      { timeoutMs: 15_000, what: 'every client on instance B and writing again' },
    );
    await Promise.all(writers.map((w) => w.stop()));
    assert.deepEqual(
      writers.flatMap((w) => w.errors.map((e) => e.message)),
      [],
    );
    await assertConverged(
      b.url,
      'notes',
      'drain',
      docs,
      writers.flatMap((w) => w.acked),
    );
  });
});

describe('drain: one in-process instance', function () {
  this.timeout(20_000);
  let dir = '';
  const servers: TestServer[] = [];
  const closers: Array<() => void> = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-drain-'));
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    for (const s of servers.splice(0)) await s.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('tells clients to go elsewhere before disconnecting them, and finishes an in-flight commit before closing the store', async () => {
    const dbUrl = `sqlite:${join(dir, 'drain.db')}`;
    const server = await startTestServer({ DB_URL: dbUrl });
    servers.push(server);
    const writer = socketClient(server.url);
    closers.push(() => writer.close());
    const doc = writer.connection.get('notes', 'inflight');
    await subscribe(doc);
    await create(doc, { items: [] });

    // A bystander on raw socket.io records the order of what the server sends it.
    const events: string[] = [];
    const raw = ioClient(server.url, { transports: ['websocket'], reconnection: false, forceNew: true });
    closers.push(() => raw.close());
    raw.on(DRAIN_EVENT, () => events.push('drain'));
    raw.on('disconnect', (reason) => events.push(`disconnect: ${reason}`));
    await waitFor(() => raw.connected, { what: 'raw socket.io connected' });

    // Hold the next commit in the store for a while, so it is in flight during the drain.
    const db = server.backend.db as unknown as { commit: (...args: unknown[]) => void };
    const commit = db.commit.bind(db);
    let releaseCommit = () => {};
    db.commit = (...args: unknown[]) => {
      const callback = args.at(-1) as (...results: unknown[]) => void;
      releaseCommit = () => commit(...args.slice(0, -1), callback);
    };
    doc.submitOp(ops.insert(['items', 0], 'in-flight'));
    await waitFor(() => server.backend.stats.inFlight === 1, { what: 'one commit in flight' });

    const closing = server.close();
    await waitFor(() => events.length === 2, { what: 'drain event and disconnect at the bystander' });
    assert.deepEqual(events, ['drain', 'disconnect: io server disconnect']);
    let closed = false;
    void closing.then(() => (closed = true));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(closed, false, 'close must wait for the in-flight commit');
    releaseCommit();
    await closing;
    servers.splice(0);
    assert.equal(server.backend.stats.inFlight, 0);
    assert.equal(server.backend.stats.commits, 2);

    // The op is in the store, read by a fresh instance on the same file.
    const again = await startTestServer({ DB_URL: dbUrl });
    servers.push(again);
    const snapshot = await storeSnapshot(again.url, 'notes', 'inflight');
    assert.deepEqual(snapshot.data, { items: ['in-flight'] });
  });

  /**
   * A server holding an engine.io long-polling handshake that never joins and never polls
   * again: socket.io's connectTimeout (AUTH_TIMEOUT_MS) closes it, and engine.io then waits for
   * a poll to carry the close. `engineTimers`: engine.io's pending timers created since.
   */
  async function closingPollingConnection(): Promise<{ server: TestServer; sid: string; engineTimers: () => string[] }> {
    const server = await startTestServer({ AUTH_TIMEOUT_MS: '300' });
    servers.push(server);
    const mark = timerMark();
    const engineTimers = () => pendingTimersSince(mark, 20).filter((origin) => origin.includes('node_modules/engine.io/'));
    const handshake = await httpRequest('GET', `${server.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(handshake.status, 200, handshake.body);
    const sid = (JSON.parse(handshake.body.slice(1)) as { sid: string }).sid;
    await waitFor(() => engineTimers().some((origin) => origin.includes('transports/polling.js')), {
      what: 'engine.io waiting for a poll to close the unjoined connection',
    });
    return { server, sid, engineTimers };
  }

  it('leaves no engine.io timer behind, also for a long-polling connection whose close still waits for a poll', async () => {
    const { server, engineTimers } = await closingPollingConnection();
    await server.close();
    servers.splice(0);
    assert.deepEqual(engineTimers(), []);
  });

  it('drops the wait for a last poll when a closing long-polling connection ends another way, without closing the server', async () => {
    const { server, sid, engineTimers } = await closingPollingConnection();
    const pollWaits = () => engineTimers().filter((origin) => origin.includes('transports/polling.js'));
    // A binary POST is a transport error for a v4 polling connection: it ends at once.
    const refused = await httpRequest('POST', `${server.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, 'application/octet-stream');
    assert.equal(refused.status, 400);
    await waitFor(() => server.io.engine.clientsCount === 0, { what: 'the connection gone' });
    assert.deepEqual(pollWaits(), []);
  });
});

/** An HTTP request on a connection of its own (no keep-alive pool left open). */
function httpRequest(method: 'GET' | 'POST', url: string, contentType?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = contentType ? { 'content-type': contentType } : {};
    const req = request(url, { method, agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '1' : undefined);
  });
}
