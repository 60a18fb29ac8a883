/**
 * Connection limits under attack, against a server in its own process (connection-server.ts):
 * - silent /sharedb sockets: terminated by the heartbeat (no pong), or closed when they
 *   never send a message (AUTH_TIMEOUT_MS); idle clients that answer stay;
 * - a flood of refused requests: logged at most REFUSAL_LOGS_PER_SECOND lines a second,
 *   the rest counted in one line;
 * - too many connections from one address: refused with TANDEM_TOO_MANY_CONNECTIONS on
 *   /sharedb (429) and socket.io (connect_error data.code, WebSocket and long-polling);
 * - too many subscriptions on one connection: refused with TANDEM_TOO_MANY_SUBSCRIPTIONS,
 *   bursts of bulk subscribes included.
 * During and after each: /healthz within 1 s, RSS under its bound, bystanders commit.
 */
import assert from 'node:assert/strict';
import { io as ioClient } from 'socket.io-client';
import { TandemErrorCode } from '../../client/protocol.js';
import { ops } from '../../ot-types/index.js';
import { create, stockClient, submit, subscribe } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { logsSince, useAttackedServer } from './connection-server.js';
import { assertHealthy, watchServer } from './connection-watch.js';
import { EngineWs, HANDSHAKE, PollingSession, RawShareDb, errorCode, refusedUpgrade, type Message } from './connection-wire.js';

const REFUSAL_LOGS_PER_SECOND = 5;

describe('resilience: connections and transports: /sharedb heartbeat', function () {
  this.timeout(30_000);
  /**
   * Short for the test, yet a client (the bystanders, in this busy test process) has two
   * intervals to answer a ping.
   */
  const PING_MS = 1_000;
  const AUTH_TIMEOUT_MS = 1_500;
  /** Lateness allowed on a busy machine beyond what a check's period allows. */
  const SLACK_MS = 1_500;
  const fixture = useAttackedServer('heartbeat', { WS_PING_INTERVAL_MS: String(PING_MS), AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS) });

  it('terminates /sharedb sockets that do not answer pings, closes ones that never say anything, and keeps idle clients', async () => {
    const watch = watchServer(fixture.server.url, fixture.pid);
    const idle = stockClient(fixture.server.url);
    const idleDoc = idle.connection.get('heartbeat', 'idle');
    await subscribe(idleDoc);
    const idleStates: string[] = [];
    idle.connection.on('state', (state) => idleStates.push(state));
    const open = (ip: string, options: { autoPong: boolean; handshake: boolean }) =>
      Promise.all(Array.from({ length: 8 }, () => RawShareDb.open(fixture.server.url, { localAddress: ip, ...options })));
    const deaf = await open('127.0.0.21', { autoPong: false, handshake: false });
    const deafAfterHandshake = await open('127.0.0.22', { autoPong: false, handshake: true });
    const mute = await open('127.0.0.23', { autoPong: true, handshake: false });
    const all = [...deaf, ...deafAfterHandshake, ...mute];
    await fixture.bystanders.commitWhile(Promise.all(all.map((socket) => socket.closed)));
    for (const socket of [...deaf, ...deafAfterHandshake]) {
      const lived = socket.closedWith!.at - socket.openedAt;
      assert.equal(socket.closedWith!.code, 1006, 'terminated');
      assert.ok(lived <= 2 * PING_MS + SLACK_MS, `a socket that answers no ping lived ${lived} ms`);
    }
    for (const socket of mute) {
      const lived = socket.closedWith!.at - socket.openedAt;
      assert.equal(socket.closedWith!.code, 1008);
      assert.ok(
        lived >= AUTH_TIMEOUT_MS - 50 && lived <= AUTH_TIMEOUT_MS + PING_MS + SLACK_MS,
        `a socket that never spoke lived ${lived} ms`,
      );
    }
    // The idle client (it answers pings and said hello) outlived them all, and still commits.
    assert.deepEqual(idleStates, []);
    if (idleDoc.type === null) await create(idleDoc, { n: [] });
    await submit(idleDoc, ops.insert(['n', 0], 1));
    idle.close();
    await fixture.bystanders.commitRound();
    assertHealthy(await watch.stop(), fixture.rssLimit, 'silent sockets');
  });
});

describe('resilience: connections and transports: connections per address, subscriptions, refusal logs', function () {
  this.timeout(30_000);
  const MAX_CONNECTIONS_PER_IP = 10;
  const MAX_SUBSCRIPTIONS = 50;
  const fixture = useAttackedServer('limits', {
    MAX_CONNECTIONS_PER_IP: String(MAX_CONNECTIONS_PER_IP),
    MAX_SUBSCRIPTIONS: String(MAX_SUBSCRIPTIONS),
    REFUSAL_LOGS_PER_SECOND: String(REFUSAL_LOGS_PER_SECOND),
    // The log limit alone, at a refusal rate the penalty would not let through (refusal-penalty.test.ts).
    REFUSALS_PER_SECOND: '0',
  });

  it('logs a flood of refusals at most REFUSAL_LOGS_PER_SECOND lines a second, and counts the rest', async () => {
    const ip = '127.0.0.28';
    const refusedFrames = 300;
    const marker = fixture.server.logs.length;
    const watch = watchServer(fixture.server.url, fixture.pid);
    const flooder = await RawShareDb.open(fixture.server.url, { localAddress: ip });
    // Frames that are not JSON: each answered TANDEM_BAD_FRAME by the transport.
    for (let i = 0; i < refusedFrames; i++) flooder.send(`not json ${i}`);
    await fixture.bystanders.commitWhile(
      waitFor(() => flooder.messages.filter((m) => errorCode(m) === TandemErrorCode.BAD_FRAME).length === refusedFrames, {
        what: 'every refusal',
      }),
    );
    await flooder.close();
    const logged = () => logsSince(fixture.server, marker, (log) => log.msg === 'request refused');
    const notLogged = () =>
      logsSince(fixture.server, marker, (log) => typeof log.refusalsNotLogged === 'number').reduce(
        (sum, log) => sum + (log.refusalsNotLogged as number),
        0,
      );
    // The count of the last second comes once that second is over.
    await waitFor(() => logged().length + notLogged() >= refusedFrames, { what: 'every refusal logged or counted' });
    const lines = logged();
    const times = lines.map((line) => line.time as number);
    const seconds = Math.ceil((Math.max(...times) - Math.min(...times)) / 1000) + 1;
    assert.ok(lines.length <= REFUSAL_LOGS_PER_SECOND * seconds, `${lines.length} refusal lines in ${seconds} s`);
    assert.ok(notLogged() > 0, 'the rest are counted');
    assert.ok(lines.some((line) => line.code === TandemErrorCode.BAD_FRAME && line.ip === ip));
    await fixture.bystanders.commitRound();
    assertHealthy(await watch.stop(), fixture.rssLimit, 'a flood of refusals');
  });

  it('refuses connections past MAX_CONNECTIONS_PER_IP on both transports with TANDEM_TOO_MANY_CONNECTIONS', async () => {
    const ip = '127.0.0.24';
    const watch = watchServer(fixture.server.url, fixture.pid);
    const raw = await Promise.all(Array.from({ length: 6 }, () => RawShareDb.open(fixture.server.url, { localAddress: ip })));
    const engines = await Promise.all(Array.from({ length: 4 }, () => EngineWs.open(fixture.server.url, { localAddress: ip })));
    try {
      assert.ok(
        engines.every((engine) => engine.isConnected),
        'the first MAX_CONNECTIONS_PER_IP are served',
      );

      const upgrade = await refusedUpgrade(fixture.server.url, { localAddress: ip });
      assert.equal(upgrade.status, 429);
      assert.equal((JSON.parse(upgrade.body) as { error: { code: string } }).error.code, TandemErrorCode.TOO_MANY_CONNECTIONS);

      const engine = await EngineWs.open(fixture.server.url, { localAddress: ip });
      assert.equal(engine.connectError?.data?.code, TandemErrorCode.TOO_MANY_CONNECTIONS);
      await engine.closed; // closed by the server once refused

      const polling = await PollingSession.open(fixture.server.url, { localAddress: ip });
      assert.equal(polling.connectError?.data?.code, TandemErrorCode.TOO_MANY_CONNECTIONS);

      // A stock socket.io client sees the code in connect_error's data.
      const client = ioClient(fixture.server.url, {
        transports: ['websocket'],
        localAddress: ip,
        reconnection: false,
        forceNew: true,
      } as Parameters<typeof ioClient>[1]);
      const refusal = await new Promise<unknown>((resolve) =>
        client.once('connect_error', (err) => resolve((err as { data?: { code?: unknown } }).data?.code)),
      );
      client.close();
      assert.equal(refusal, TandemErrorCode.TOO_MANY_CONNECTIONS);

      // A flood of upgrades from the address is refused while bystanders commit.
      const flood = Promise.all(Array.from({ length: 200 }, () => refusedUpgrade(fixture.server.url, { localAddress: ip })));
      await fixture.bystanders.commitWhile(flood);
      assert.ok((await flood).every((answer) => answer.status === 429));

      // A closed connection frees its place.
      await raw.pop()!.close();
      const again = await waitFor(async () => RawShareDb.open(fixture.server.url, { localAddress: ip }), {
        what: 'a place freed',
        intervalMs: 50,
      });
      raw.push(again);
    } finally {
      await Promise.all([...raw, ...engines].map((socket) => socket.close()));
    }
    await fixture.bystanders.commitRound();
    assertHealthy(await watch.stop(), fixture.rssLimit, 'connections per address');
  });

  it('caps documents, queries and presence channels per connection at MAX_SUBSCRIPTIONS with TANDEM_TOO_MANY_SUBSCRIPTIONS', async () => {
    const watch = watchServer(fixture.server.url, fixture.pid);
    const reply = (client: RawShareDb | EngineWs, action: string, key: (m: Message) => boolean) =>
      client.next((m) => m.a === action && key(m), `${action} reply`);

    const client = await RawShareDb.open(fixture.server.url, { localAddress: '127.0.0.25' });
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) client.send({ a: 's', c: 'cap', d: `d-${i}` });
    await waitFor(() => client.messages.filter((m) => m.a === 's').length === MAX_SUBSCRIPTIONS, { what: 'subscribe replies' });
    assert.ok(client.messages.filter((m) => m.a === 's').every((m) => errorCode(m) === undefined));
    client.send({ a: 's', c: 'cap', d: 'over' });
    assert.equal(errorCode(await reply(client, 's', (m) => m.d === 'over')), TandemErrorCode.TOO_MANY_SUBSCRIPTIONS);
    client.send({ a: 'qs', id: 7, c: 'cap', q: {} });
    assert.equal(errorCode(await reply(client, 'qs', (m) => m.id === 7)), TandemErrorCode.TOO_MANY_SUBSCRIPTIONS);
    client.send({ a: 'ps', ch: 'cap.d-0', seq: 1 });
    assert.equal(errorCode(await reply(client, 'ps', (m) => m.ch === 'cap.d-0')), TandemErrorCode.TOO_MANY_SUBSCRIPTIONS);
    // Subscribing again to a held document adds nothing; unsubscribing frees a place.
    const held = client.messages.length;
    client.send({ a: 's', c: 'cap', d: 'd-0' });
    await waitFor(() => client.messages.slice(held).some((m) => m.a === 's' && m.d === 'd-0'), { what: 'resubscribe reply' });
    assert.equal(errorCode(client.messages.slice(held).find((m) => m.a === 's')!), undefined);
    client.send({ a: 'u', c: 'cap', d: 'd-1' });
    await reply(client, 'u', (m) => m.d === 'd-1');
    client.send({ a: 's', c: 'cap', d: 'now-fits' });
    assert.equal(errorCode(await reply(client, 's', (m) => m.d === 'now-fits')), undefined);

    // A burst of bulk subscribes arriving together cannot pass the cap between them.
    const burst = await EngineWs.open(fixture.server.url, { localAddress: '127.0.0.26', batch: true });
    burst.send(HANDSHAKE);
    await burst.next((m) => m.a === 'hs', 'handshake reply');
    for (let k = 0; k < 10; k++) burst.send({ a: 'bs', c: 'cap', b: Array.from({ length: 10 }, (_, i) => `burst-${k}-${i}`) });
    await waitFor(() => burst.messages.filter((m) => m.a === 'bs').length === 10, { what: 'bulk subscribe replies' });
    const codes = burst.messages.filter((m) => m.a === 'bs').map(errorCode);
    assert.equal(codes.filter((code) => code === undefined).length, MAX_SUBSCRIPTIONS / 10);
    assert.equal(codes.filter((code) => code === TandemErrorCode.TOO_MANY_SUBSCRIPTIONS).length, 10 - MAX_SUBSCRIPTIONS / 10);

    // 60,000 ids in one frame: refused at once, nothing subscribed.
    const bulk = await RawShareDb.open(fixture.server.url, { localAddress: '127.0.0.27' });
    bulk.send({ a: 'bs', c: 'cap', b: Array.from({ length: 60_000 }, (_, i) => `m-${i}`) });
    const refused = bulk.next((m) => m.a === 'bs', 'bulk subscribe reply');
    await fixture.bystanders.commitWhile(refused);
    assert.equal(errorCode(await refused), TandemErrorCode.TOO_MANY_SUBSCRIPTIONS);

    await Promise.all([client, burst, bulk].map((socket) => socket.close()));
    await fixture.bystanders.commitRound();
    assertHealthy(await watch.stop(), fixture.rssLimit, 'subscriptions per connection');
  });
});
