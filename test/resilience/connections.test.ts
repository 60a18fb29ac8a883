/**
 * Attacks on what the server holds for one connection (issue: no single client can crash,
 * freeze or exhaust the server), with real sockets against a server in its own process
 * (connection-server.ts), on every transport where it applies:
 * - a client that stops reading (/sharedb, socket.io over WebSocket, socket.io
 *   long-polling that never polls): dropped within its budget (MAX_BUFFERED_BYTES, see
 *   server/limits/connection-budget.ts), where the server used to queue hundreds of MB;
 *   dropped, an SDK client reconnects and catches up;
 * - refused 1 MB frames from a client that does not read: the refusals are small, do not
 *   pile up, and are each logged as one line;
 * - 20,000 bulk subscriptions, then a disconnect: released without blocking the event
 *   loop (ShareDB's own cleanup took ~30 s);
 * - ordinary clients (SDK on both socket.io transports, stock ShareDB) are never dropped.
 * During and after each attack: /healthz answers within 1 s, the server's RSS stays under
 * RSS_HEADROOM_BYTES above its RSS before the attacks, and bystanders keep committing.
 * Attackers connect from their own loopback addresses (127.0.0.x), bystanders from 127.0.0.1.
 * Heartbeat, connections per address and subscriptions per connection: connection-limits.test.ts.
 */
import assert from 'node:assert/strict';
import { TandemErrorCode } from '../../client/protocol.js';
import { JSON1_TYPE_URI, ops } from '../../ot-types/index.js';
import { READING_CLIENT_FACTOR } from '../../server/limits/connection-budget.js';
import { create, stockClient, submit, subscribe, type Doc } from '../helpers/clients.js';
import { sdkClient } from '../helpers/sdk-clients.js';
import { waitFor } from '../helpers/wait.js';
import { PausingProxy } from './connection-proxy.js';
import { DROP_MESSAGE, isDrop, logsSince, metric, useAttackedServer, type Log } from './connection-server.js';
import { agentsOf, assertHealthy, untilAgents, watchServer } from './connection-watch.js';
import { EngineWs, HANDSHAKE, PollingSession, RawShareDb, errorCode, socketIoShareDbPacket } from './connection-wire.js';

const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** 20 documents of 240 KB: a fetch answers 240 KB, a query over them 4.8 MB (> MAX_BUFFERED_BYTES). */
const BIG_DOCS = 20;
const BIG_DOC_CHARS = 240_000;

describe('resilience: connections and transports: buffers, large frames, bulk subscriptions', function () {
  this.timeout(30_000);
  const fixture = useAttackedServer('buffers', {
    MAX_BUFFERED_BYTES: String(MAX_BUFFERED_BYTES),
    MAX_SUBSCRIPTIONS: '25000',
    // Every refusal and drop logged: the tests read the lines.
    REFUSAL_LOGS_PER_SECOND: '100000',
  });

  before(async () => {
    const setup = stockClient(fixture.server.url);
    const text = 'x'.repeat(BIG_DOC_CHARS);
    for (let i = 0; i < BIG_DOCS; i++) await create(setup.connection.get('big', `doc-${i}`), { text });
    setup.close();
    fixture.measureBaseline();
  });

  it('answers 1 MB frames refused from a client that does not read with small errors, each logged as one line', async () => {
    const ip = '127.0.0.11';
    const frames = 40;
    const marker = fixture.server.logs.length;
    const watch = watchServer(fixture.server.url, fixture.pid);
    const payload = 'x'.repeat(1_000_000);
    const frame = (i: number) =>
      JSON.stringify({ a: 'op', c: 'junk', d: `j-${i}`, v: null, seq: i + 1, create: { type: JSON1_TYPE_URI, data: { s: payload } } });
    for (const transport of ['sharedb', 'socket.io'] as const) {
      const attacker =
        transport === 'sharedb'
          ? await RawShareDb.open(fixture.server.url, { localAddress: ip })
          : await EngineWs.open(fixture.server.url, { localAddress: ip, batch: true });
      if (transport === 'socket.io') {
        attacker.send(HANDSHAKE);
        await attacker.next((m) => m.a === 'hs', 'handshake reply');
      }
      attacker.pauseReading();
      const before = attacker.receivedBytes;
      const rejectedBefore = await metric(fixture.server.url, 'rejected');
      // Each frame is sent once the previous one was taken by the kernel: the attack
      // stays a stream of 1 MB frames, not 60 MB queued in this process.
      const sending = (async () => {
        for (let i = 0; i < frames; i++)
          await new Promise<void>((resolve, reject) =>
            attacker.ws.send(transport === 'sharedb' ? frame(i) : socketIoShareDbPacket(frame(i)), (err) =>
              err ? reject(err) : resolve(),
            ),
          );
      })();
      await fixture.bystanders.commitWhile(sending);
      await waitFor(async () => (await metric(fixture.server.url, 'rejected')) >= rejectedBefore + frames, {
        timeoutMs: 20_000,
        intervalMs: 50,
        what: `${transport}: every frame refused`,
      });
      assert.deepEqual(
        logsSince(fixture.server, marker, (log) => isDrop(log, ip)),
        [],
        `${transport}: a client refused small errors is not dropped`,
      );
      attacker.resumeReading();
      const refused = () => attacker.messages.filter((m) => m.a === 'op' && errorCode(m) !== undefined);
      await waitFor(() => refused().length === frames, { what: `${transport}: ${frames} refusals received` });
      assert.deepEqual(new Set(refused().map(errorCode)), new Set([TandemErrorCode.OP_TOO_LARGE]));
      const perRefusal = (attacker.receivedBytes - before) / frames;
      assert.ok(perRefusal < 1024, `${transport}: ${perRefusal.toFixed(0)} bytes per refusal; the refused op must not be echoed`);
      await attacker.close();
    }
    await fixture.bystanders.commitRound();
    assertHealthy(await watch.stop(), fixture.rssLimit, 'refused 1 MB frames');

    const refusalLines = () => logsSince(fixture.server, marker, (log) => log.msg === 'request refused' && log.ip === ip);
    await waitFor(() => refusalLines().length === 2 * frames, { what: 'one log line per refusal' });
    for (const line of refusalLines()) {
      assert.equal(line.code, TandemErrorCode.OP_TOO_LARGE);
      assert.equal(line.action, 'op');
      assert.equal(line.collection, 'junk');
      assert.match(String(line.id), /^j-\d+$/);
    }
  });

  it('drops a /sharedb client that stops reading before the server holds MAX_BUFFERED_BYTES for it', async () => {
    const ip = '127.0.0.12';
    const fetches = 1500; // 360 MB of replies if the server kept them all
    const marker = fixture.server.logs.length;
    const watch = watchServer(fixture.server.url, fixture.pid);
    const attacker = await RawShareDb.open(fixture.server.url, { localAddress: ip });
    attacker.pauseReading();
    for (let i = 0; i < fetches; i++) attacker.send({ a: 'f', c: 'big', d: `doc-${i % BIG_DOCS}` });
    const dropped = waitFor(() => logsSince(fixture.server, marker, (log) => isDrop(log, ip)).length > 0, {
      timeoutMs: 20_000,
      what: 'the attacker dropped',
    });
    await fixture.bystanders.commitWhile(dropped);
    attacker.resumeReading();
    await attacker.closed;
    await fixture.bystanders.commitRound();
    assertHealthy(await watch.stop(), fixture.rssLimit, '/sharedb client that does not read');
    const [drop] = logsSince(fixture.server, marker, (log) => isDrop(log, ip));
    assertHeldWithinBudget(drop!);
    assert.ok(attacker.receivedBytes < (fetches * BIG_DOC_CHARS) / 10, `the attacker got ${attacker.receivedBytes} bytes`);
  });

  it('drops a socket.io WebSocket client that stops reading (queries over 3.8 MB of documents)', async () => {
    const ip = '127.0.0.13';
    const queries = 40; // ~190 MB of results
    const marker = fixture.server.logs.length;
    const watch = watchServer(fixture.server.url, fixture.pid);
    const attacker = await EngineWs.open(fixture.server.url, { localAddress: ip, batch: true });
    attacker.send(HANDSHAKE);
    await attacker.next((m) => m.a === 'hs', 'handshake reply');
    attacker.pauseReading();
    for (let i = 0; i < queries; i++) attacker.send({ a: 'qf', id: i + 1, c: 'big', q: {} });
    const dropped = waitFor(() => logsSince(fixture.server, marker, (log) => isDrop(log, ip)).length > 0, {
      timeoutMs: 20_000,
      what: 'the attacker dropped',
    });
    await fixture.bystanders.commitWhile(dropped);
    attacker.resumeReading();
    await attacker.closed;
    await fixture.bystanders.commitRound();
    assertHealthy(await watch.stop(), fixture.rssLimit, 'socket.io WebSocket client that does not read');
    const [drop] = logsSince(fixture.server, marker, (log) => isDrop(log, ip));
    assert.equal(drop!.transport, 'websocket');
    assertHeldWithinBudget(drop!);
  });

  it('drops a socket.io long-polling client that never polls for its replies', async () => {
    const ip = '127.0.0.14';
    const marker = fixture.server.logs.length;
    const watch = watchServer(fixture.server.url, fixture.pid);
    const { session, connectError } = await PollingSession.open(fixture.server.url, { localAddress: ip });
    assert.equal(connectError, null);
    // 20 queries in one 1 KB POST used to leave 132 MB queued for the next GET.
    const attack = (async () => {
      assert.equal(await session.post([socketIoShareDbPacket(HANDSHAKE)]), 200);
      for (let round = 0; round < 3; round++) {
        const status = await session.post(
          Array.from({ length: 10 }, (_, i) => socketIoShareDbPacket({ a: 'qf', id: round * 10 + i + 1, c: 'big', q: {} })),
        );
        if (status !== 200) return;
      }
    })();
    const dropped = waitFor(() => logsSince(fixture.server, marker, (log) => isDrop(log, ip)).length > 0, {
      timeoutMs: 20_000,
      what: 'the attacker dropped',
    });
    await fixture.bystanders.commitWhile(Promise.all([attack, dropped]));
    assert.equal(await session.post([socketIoShareDbPacket({ a: 'qf', id: 99, c: 'big', q: {} })]), 400, 'the session is gone');
    await fixture.bystanders.commitRound();
    assertHealthy(await watch.stop(), fixture.rssLimit, 'long-polling client that never polls');
    const [drop] = logsSince(fixture.server, marker, (log) => isDrop(log, ip));
    assert.equal(drop!.transport, 'polling');
    assertHeldWithinBudget(drop!);
  });

  it('lets a client dropped for not reading reconnect and catch up (SDK behind a proxy that stops reading)', async () => {
    const ip = '127.0.0.16';
    const proxy = await PausingProxy.start(fixture.server.url, ip);
    const writer = stockClient(fixture.server.url);
    const closers: Array<() => Promise<void>> = [];
    try {
      const written = writer.connection.get('catchup', 'doc');
      await subscribe(written);
      await create(written, { text: '' });
      const sdk = sdkClient(proxy.url, closers, { transports: ['websocket'] });
      const doc = sdk.doc<{ text: string }>('catchup', 'doc');
      await doc.ready;
      const marker = fixture.server.logs.length;
      proxy.pause();
      // 100 KB ops until the server drops the client that no longer reads them.
      const dropped = () => logsSince(fixture.server, marker, (log) => isDrop(log, ip)).length > 0;
      for (let i = 0; !dropped(); i++) {
        assert.ok(i < 400, 'the client was not dropped');
        await submit(written, ops.replace(['text'], `${i}:`.padEnd(100_000, '.')));
      }
      proxy.resume();
      // ShareDB sends the missed ops (what the server held plus what the kernel held) at once.
      await waitFor(() => doc.version === written.version && doc.data?.text === (written.data as { text: string }).text, {
        timeoutMs: 15_000,
        what: `the SDK catches up to v${written.version} (at v${doc.version})`,
      });
      assert.equal(logsSince(fixture.server, marker, (log) => isDrop(log, ip)).length, 1, 'dropped once, not again while catching up');
      await fixture.bystanders.commitRound();
    } finally {
      for (const close of closers) await close();
      writer.close();
      await proxy.close();
    }
  });

  it('releases 20,000 bulk subscriptions of a connection that goes away without blocking the event loop', async function () {
    this.timeout(45_000);
    const ids = Array.from({ length: 20_000 }, (_, i) => `b-${i}`);
    for (const transport of ['sharedb', 'socket.io'] as const) {
      const attacker =
        transport === 'sharedb'
          ? await RawShareDb.open(fixture.server.url, { localAddress: '127.0.0.15' })
          : await EngineWs.open(fixture.server.url, { localAddress: '127.0.0.15', batch: true });
      if (transport === 'socket.io') {
        attacker.send(HANDSHAKE);
        await attacker.next((m) => m.a === 'hs', 'handshake reply');
      }
      attacker.send({ a: 'bs', c: 'bulk', b: ids });
      const reply = await attacker.next((m) => m.a === 'bs', 'bulk subscribe reply', 20_000);
      assert.equal(errorCode(reply), undefined, `${transport}: bulk subscribe: ${JSON.stringify(reply.error)}`);
      const agents = await agentsOf(fixture.server.url);
      const watch = watchServer(fixture.server.url, fixture.pid);
      await attacker.close();
      await fixture.bystanders.commitWhile(untilAgents(fixture.server.url, agents - 1));
      await fixture.bystanders.commitRound();
      assertHealthy(await watch.stop(), fixture.rssLimit, `${transport}: 20,000 subscriptions released`);
    }
  });

  it('never drops ordinary clients (SDK on WebSocket and long-polling, stock ShareDB) under normal load', async () => {
    const marker = fixture.server.logs.length;
    const closers: Array<() => Promise<void>> = [];
    const lostConnection: string[] = [];
    try {
      const sdks = [0, 1, 2, 3, 4, 5].map((i) => {
        const client = sdkClient(fixture.server.url, closers, i < 2 ? { transports: ['polling'] } : {});
        return client;
      });
      const stocks = [0, 1, 2, 3].map(() => {
        const client = stockClient(fixture.server.url);
        closers.push(async () => client.close());
        return client;
      });
      const names = ['n-0', 'n-1', 'n-2'];
      await Promise.all(names.map((name) => sdks[0]!.doc<{ items: number[] }>('normal', name, { create: { items: [] } }).ready));
      const sdkDocs = sdks.map((client) => names.map((name) => client.doc<{ items: number[] }>('normal', name)));
      await Promise.all(sdkDocs.flat().map((doc) => doc.ready));
      const stockDocs: Doc[][] = stocks.map((client) => names.map((name) => client.connection.get('normal', name)));
      await Promise.all(stockDocs.flat().map(subscribe));
      sdks.forEach((client, i) => client.on('state', (state) => state !== 'online' && lostConnection.push(`sdk ${i}: ${state}`)));
      stocks.forEach((client, i) => client.connection.on('state', (state) => lostConnection.push(`stock ${i}: ${state}`)));
      // One reply larger than MAX_BUFFERED_BYTES: the large documents in one bulk subscribe.
      const loader = stocks[0]!.connection;
      // ShareDB's client has startBulk/endBulk; @types/sharedb does not declare them.
      const bulk = loader as unknown as { startBulk(): void; endBulk(): void };
      bulk.startBulk();
      const bigDocs = Array.from({ length: BIG_DOCS }, (_, i) => loader.get('big', `doc-${i}`));
      const loaded = Promise.all(bigDocs.map(subscribe));
      bulk.endBulk();
      await loaded;
      assert.ok(bigDocs.every((doc) => (doc.data as { text: string }).text.length === BIG_DOC_CHARS));

      for (let round = 0; round < 10; round++) {
        for (const docs of sdkDocs) for (const doc of docs) doc.submit(ops.insert(['items', 0], round));
        const stockAcks = stockDocs.flatMap((docs) => docs.map((doc) => submit(doc, ops.insert(['items', 0], round))));
        await Promise.all([...stockAcks, ...sdkDocs.flat().map((doc) => doc.whenSynced())]);
      }
      const expected = (sdks.length + stocks.length) * 10;
      await waitFor(
        () =>
          [
            ...sdkDocs.flat().map((doc) => doc.data?.items.length),
            ...stockDocs.flat().map((doc) => (doc.data as { items: number[] }).items.length),
          ].every((n) => n === expected),
        { what: 'every client sees every op' },
      );
      assert.deepEqual(lostConnection, []);
      assert.deepEqual(
        logsSince(fixture.server, marker, (log) => log.msg === DROP_MESSAGE),
        [],
      );
    } finally {
      for (const close of closers.reverse()) await close();
    }
  });
});

/**
 * The drop came at the budget: MAX_BUFFERED_BYTES for a client that took nothing since the
 * last write, READING_CLIENT_FACTOR times it for one still taking; what was held had been
 * admitted under one of these (the replies here are all smaller than the larger).
 */
function assertHeldWithinBudget(drop: Log): void {
  assert.equal(drop.limitBytes, drop.reading ? READING_CLIENT_FACTOR * MAX_BUFFERED_BYTES : MAX_BUFFERED_BYTES);
  assert.ok((drop.heldBytes as number) <= READING_CLIENT_FACTOR * MAX_BUFFERED_BYTES, `held ${String(drop.heldBytes)} bytes when dropped`);
}
