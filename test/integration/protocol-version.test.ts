/**
 * The protocol version at the handshake (client/protocol.ts PROTOCOL_VERSION,
 * PROTOCOL_QUERY_PARAM): a client announcing a version the server does not support is refused
 * with TANDEM_PROTOCOL_VERSION before anything reaches ShareDB, on socket.io and /sharedb; a
 * client announcing the server's version, or none (stock ShareDB, raw socket.io), is accepted.
 * The SDK announces its version and takes the refusal as final: one error, state 'closed',
 * `whenOnline()` rejects, and no reconnect — unless another of its URLs accepts it.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as SocketIoServer } from 'socket.io';
import { io } from 'socket.io-client';
import { connect, TandemError, type TandemClient } from '../../client/index.js';
import { PROTOCOL_QUERY_PARAM, PROTOCOL_VERSION, TandemErrorCode } from '../../client/protocol.js';
import { protocolRefusal } from '../../server/transport/protocol-version.js';
import { AUTH_ENV } from '../helpers/auth.js';
import { closeWs, jsonBody, tryUpgrade } from '../helpers/auth-wire.js';
import { sdkClient } from '../helpers/sdk-clients.js';
import { useServerPerTest, type ServerPerTest } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

type Transport = 'websocket' | 'polling';

type Outcome = { kind: 'refused'; code: string | null; message: string } | { kind: 'connected' };

/** One raw socket.io handshake with `query`, closed whatever its outcome. */
function handshake(url: string, query: Record<string, string>, transport: Transport): Promise<Outcome> {
  const socket = io(url, { query, transports: [transport], reconnection: false, forceNew: true });
  return new Promise<Outcome>((resolve) => {
    socket.once('connect', () => resolve({ kind: 'connected' }));
    socket.once('connect_error', (err: Error) => {
      const data = (err as { data?: { code?: unknown } }).data;
      resolve({ kind: 'refused', code: typeof data?.code === 'string' ? data.code : null, message: err.message });
    });
  }).finally(() => socket.disconnect());
}

/** Counts ShareDB connections (its 'connect' middleware): a refused client must add none. */
function countConnects(ctx: ServerPerTest): { readonly count: number } {
  const counter = { count: 0 };
  ctx.server.backend.use('connect', (_context, next) => {
    counter.count++;
    next();
  });
  return counter;
}

const WRONG_VERSIONS = [String(PROTOCOL_VERSION + 1), '0', 'abc', '', ` ${PROTOCOL_VERSION}`];

describe('protocol version at the handshake', function () {
  this.timeout(20_000);

  describe('a Tandem server', () => {
    const ctx = useServerPerTest();

    for (const transport of ['websocket', 'polling'] as const) {
      it(`socket.io (${transport}): another version is refused with TANDEM_PROTOCOL_VERSION naming the supported one; nothing reaches ShareDB`, async () => {
        const connects = countConnects(ctx);
        for (const version of WRONG_VERSIONS) {
          const outcome = await handshake(ctx.server.url, { [PROTOCOL_QUERY_PARAM]: version }, transport);
          assert.equal(outcome.kind, 'refused', `version ${JSON.stringify(version)} was accepted`);
          if (outcome.kind !== 'refused') return;
          assert.equal(outcome.code, TandemErrorCode.PROTOCOL_VERSION, outcome.message);
          assert.match(outcome.message, new RegExp(`supports Tandem protocol version ${PROTOCOL_VERSION}\\b`));
        }
        assert.equal(connects.count, 0, 'no refused client reached ShareDB');
      });

      it(`socket.io (${transport}): the server's version, or none, is accepted`, async () => {
        const connects = countConnects(ctx);
        assert.deepEqual(await handshake(ctx.server.url, { [PROTOCOL_QUERY_PARAM]: String(PROTOCOL_VERSION) }, transport), {
          kind: 'connected',
        });
        assert.deepEqual(await handshake(ctx.server.url, {}, transport), { kind: 'connected' });
        await waitFor(() => connects.count === 2, { what: 'both clients to reach ShareDB' });
      });
    }

    it("/sharedb: another version is an HTTP 400 TANDEM_PROTOCOL_VERSION; the server's version and none (stock clients) are accepted", async () => {
      const connects = countConnects(ctx);
      for (const query of [`${PROTOCOL_QUERY_PARAM}=${PROTOCOL_VERSION + 1}`, `${PROTOCOL_QUERY_PARAM}=1&${PROTOCOL_QUERY_PARAM}=1`]) {
        const result = await tryUpgrade(ctx.server.url, { path: `/sharedb?${query}` });
        if (result.kind === 'open') await closeWs(result.ws);
        assert.equal(result.kind, 'refused', `${query} was accepted`);
        if (result.kind !== 'refused') return;
        assert.equal(result.status, 400);
        const body = jsonBody(result);
        assert.equal(body.error?.code, TandemErrorCode.PROTOCOL_VERSION, result.body);
        assert.match(String(body.error?.message), new RegExp(`supports Tandem protocol version ${PROTOCOL_VERSION}\\b`));
      }
      assert.equal(connects.count, 0, 'no refused client reached ShareDB');
      for (const path of [`/sharedb?${PROTOCOL_QUERY_PARAM}=${PROTOCOL_VERSION}`, '/sharedb']) {
        const result = await tryUpgrade(ctx.server.url, { path });
        assert.equal(result.kind, 'open', path);
        if (result.kind === 'open') await closeWs(result.ws);
      }
      await waitFor(() => connects.count === 2, { what: 'both clients to reach ShareDB' });
    });

    it('the SDK announces its version and is accepted', async () => {
      const versions: unknown[] = [];
      ctx.server.io.use((socket, next) => {
        versions.push(socket.handshake.query[PROTOCOL_QUERY_PARAM]);
        next();
      });
      const closers: Array<() => Promise<void>> = [];
      try {
        const client = sdkClient(ctx.server.url, closers);
        await client.whenOnline();
        assert.deepEqual(versions, [String(PROTOCOL_VERSION)]);
        assert.equal(client.refused, null);
      } finally {
        for (const close of closers.reverse()) await close();
      }
    });
  });

  describe('a Tandem server with authentication', () => {
    const ctx = useServerPerTest(AUTH_ENV);

    it('checks the version before the token: an outdated client learns the real reason', async () => {
      const wrong = await handshake(ctx.server.url, { [PROTOCOL_QUERY_PARAM]: String(PROTOCOL_VERSION + 1) }, 'websocket');
      assert.equal(wrong.kind === 'refused' ? wrong.code : 'connected', TandemErrorCode.PROTOCOL_VERSION);
      const right = await handshake(ctx.server.url, { [PROTOCOL_QUERY_PARAM]: String(PROTOCOL_VERSION) }, 'websocket');
      assert.equal(right.kind === 'refused' ? right.code : 'connected', TandemErrorCode.UNAUTHENTICATED, 'a version is no credential');
      const upgrade = await tryUpgrade(ctx.server.url, { path: `/sharedb?${PROTOCOL_QUERY_PARAM}=${PROTOCOL_VERSION + 1}` });
      if (upgrade.kind === 'open') await closeWs(upgrade.ws);
      assert.equal(upgrade.kind === 'refused' ? upgrade.status : 101, 400);
    });
  });

  describe('the SDK against a server that supports only another version', () => {
    /**
     * A socket.io server standing for a newer Tandem release: the real check
     * (protocolRefusal), supporting only PROTOCOL_VERSION + 1, answered as the transport
     * answers it (`connect_error` with `data.code`). Handshakes are counted per `who` query
     * value; `who=control` is refused with a code the SDK retries (a yardstick for time).
     */
    interface NewerServer {
      readonly url: string;
      attempts(who: string): number;
      close(): Promise<void>;
    }

    async function startNewerServer(): Promise<NewerServer> {
      const http = createServer();
      const server = new SocketIoServer(http, { serveClient: false });
      const attempts = new Map<string, number>();
      server.use((socket, next) => {
        const who = String(socket.handshake.query.who ?? 'sdk');
        attempts.set(who, (attempts.get(who) ?? 0) + 1);
        if (who === 'control') return next(Object.assign(new Error('retry me'), { data: { code: TandemErrorCode.UNAUTHENTICATED } }));
        const refusal = protocolRefusal(socket.handshake.query[PROTOCOL_QUERY_PARAM], [PROTOCOL_VERSION + 1]);
        next(refusal ? Object.assign(new Error(refusal.message), { data: { code: refusal.code } }) : undefined);
      });
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      return {
        url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
        attempts: (who) => attempts.get(who) ?? 0,
        close: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    }

    const closers: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const close of closers.splice(0).reverse()) await close();
    });

    /** An SDK client with near-immediate reconnects, so a retry would show at once. */
    function client(url: string | string[], query: Record<string, string> = {}): TandemClient {
      const c = connect({ url, reconnect: { initialDelayMs: 1, maxDelayMs: 1 }, locks: null, socketOptions: { query } });
      // Heard here so that errors a test does not collect are not printed as unhandled.
      c.on('error', () => undefined);
      closers.push(() => c.close());
      return c;
    }

    it('reports TANDEM_PROTOCOL_VERSION once, turns closed, rejects whenOnline, and never reconnects', async () => {
      const newer = await startNewerServer();
      closers.push(() => newer.close());
      const sdk = client(newer.url);
      const errors: TandemError[] = [];
      const states: string[] = [];
      sdk.on('error', (e) => errors.push(e));
      sdk.on('state', (s) => states.push(s));
      const online = sdk.whenOnline();
      await assert.rejects(online, (err: unknown) => err instanceof TandemError && err.code === TandemErrorCode.PROTOCOL_VERSION);
      assert.equal(sdk.state, 'closed');
      assert.deepEqual(states, ['closed']);
      assert.deepEqual(
        errors.map((e) => e.code),
        [TandemErrorCode.PROTOCOL_VERSION],
      );
      assert.match(errors[0]!.message, new RegExp(`supports Tandem protocol version ${PROTOCOL_VERSION + 1}\\b`));
      assert.equal(sdk.refused, errors[0]);
      await assert.rejects(sdk.whenOnline(), { code: TandemErrorCode.PROTOCOL_VERSION });

      // A client refused with a code it does retry, on the same reconnect policy, makes
      // several attempts meanwhile: the refused one would have too, had it kept trying.
      client(newer.url, { who: 'control' });
      await waitFor(() => newer.attempts('control') >= 5, { what: 'five attempts of the retrying client' });
      assert.equal(newer.attempts('sdk'), 1, 'the refused SDK client never reconnected');
      sdk.goOnline();
      await waitFor(() => newer.attempts('control') >= 10, { what: 'five more attempts of the retrying client' });
      assert.equal(newer.attempts('sdk'), 1, 'goOnline() does not restart a refused client');
    });

    it('with several URLs it stops once every one refused, each tried once, the refusal reported once', async () => {
      const a = await startNewerServer();
      closers.push(() => a.close());
      const b = await startNewerServer();
      closers.push(() => b.close());
      const stopped = client([a.url, b.url]);
      const codes: string[] = [];
      stopped.on('error', (e) => codes.push(e.code));
      await assert.rejects(stopped.whenOnline(), { code: TandemErrorCode.PROTOCOL_VERSION });
      assert.deepEqual([a.attempts('sdk'), b.attempts('sdk')], [1, 1], 'each URL tried once');
      assert.equal(stopped.state, 'closed');
      assert.deepEqual(codes, [TandemErrorCode.PROTOCOL_VERSION]);
    });
  });

  describe('the SDK during a rolling upgrade', () => {
    const ctx = useServerPerTest();
    const closers: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const close of closers.splice(0).reverse()) await close();
    });

    it('one URL refuses its version, another accepts: it reports the refusal and goes online on the other', async () => {
      const http = createServer();
      const newer = new SocketIoServer(http, { serveClient: false });
      newer.use((socket, next) => {
        const refusal = protocolRefusal(socket.handshake.query[PROTOCOL_QUERY_PARAM], [PROTOCOL_VERSION + 1]);
        next(refusal ? Object.assign(new Error(refusal.message), { data: { code: refusal.code } }) : undefined);
      });
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      closers.push(() => new Promise<void>((resolve) => newer.close(() => resolve())));
      const sdk = connect({
        url: [`http://127.0.0.1:${(http.address() as AddressInfo).port}`, ctx.server.url],
        reconnect: { initialDelayMs: 1, maxDelayMs: 1 },
        locks: null,
      });
      closers.push(() => sdk.close());
      const codes: string[] = [];
      sdk.on('error', (e) => codes.push(e.code));
      await sdk.whenOnline();
      assert.deepEqual(codes, [TandemErrorCode.PROTOCOL_VERSION]);
      assert.equal(sdk.refused, null);
      const doc = sdk.doc<{ n: number }>('notes', 'rolling', { create: { n: 1 } });
      await doc.ready;
      assert.deepEqual(doc.data, { n: 1 });
    });
  });
});
