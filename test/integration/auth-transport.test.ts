/**
 * Authentication and origin checks at the transports, seen from the wire: socket.io
 * (handshake `auth.token`, `tandem:auth` refresh) and the stock-ShareDB WebSocket at
 * /sharedb (`Authorization: Bearer` or `?token=`), HS256 / RS256 / EdDSA-from-JWKS keys,
 * token expiry on an open connection, browser origins on every entry point, /metrics
 * access, and the configuration rules that keep a public bind from running open.
 *
 * Every refusal is checked twice: the exact code the client gets, and the store afterwards
 * (a client that tried to write anyway left the document and its op log as they were).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, exportJWK, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import type { Socket } from 'socket.io-client';
import { AUTH_REFRESH_EVENT, TandemErrorCode } from '../../client/protocol.js';
import { ConfigError, loadConfig } from '../../server/config.js';
import { createOriginPolicy } from '../../server/transport/origins.js';
import { ops } from '../../ot-types/index.js';
import { AUTH_ENV, TEST_JWT_SECRET, testToken } from '../helpers/auth.js';
import { create, fetchDoc, socketClient, submit, type Connection, type Doc } from '../helpers/clients.js';
import {
  closeWs,
  httpGet,
  jsonBody,
  socketIoHandshake,
  storeState,
  tokenStockClient,
  tryUpgrade,
  type TokenStockClient,
} from '../helpers/auth-wire.js';
import { useServerPerTest, type ServerPerTest } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

const ISSUER = 'https://issuer.tandem.test';
const AUDIENCE = 'tandem-tests';
const COLLECTION = 'notes';
/** A document seeded before each refusal test: created, then one op (version 2, 2 ops). */
const SEED_ID = 'seed';
const SEED_AFTER = { items: ['a', 'b'] };
/** Another 32+ byte secret: a token signed with it has a valid shape but a wrong signature. */
const OTHER_SECRET = 'some-other-secret-0123456789abcdefgh';

const SIO_POLLING_HANDSHAKE = '/socket.io/?EIO=4&transport=polling';
const SIO_WS_UPGRADE = '/socket.io/?EIO=4&transport=websocket';

/** Creates `notes/seed` through a server-side connection (no transport, no token involved). */
async function seed(ctx: ServerPerTest): Promise<void> {
  const connection = ctx.server.backend.connect();
  try {
    const doc = connection.get(COLLECTION, SEED_ID);
    await create(doc, { items: ['a'] });
    await submit(doc, ops.insert(['items', 1], 'b'));
  } finally {
    connection.close();
  }
}

async function assertSeedUntouched(ctx: ServerPerTest): Promise<void> {
  assert.deepEqual(await storeState(ctx.server, COLLECTION, SEED_ID), { v: 2, data: SEED_AFTER, ops: 2, users: [undefined, undefined] });
  // The document the refused client tried to create does not exist.
  const fresh = await storeState(ctx.server, COLLECTION, 'fresh');
  assert.equal(fresh.v, 0);
  assert.equal(fresh.ops, 0);
}

/**
 * What a client that ignores its refusal would send: an op on the seeded document (its
 * snapshot ingested, so ShareDB sends the op as soon as it can) and a create of a new one.
 * Returns the results of both, so the test can check that neither was ever acknowledged.
 */
function attemptWrites(connection: Connection): Array<string> {
  const results: string[] = [];
  const record = (what: string) => (err?: unknown) => results.push(`${what}: ${err ? String((err as { code?: unknown }).code) : 'ok'}`);
  const seeded = connection.get(COLLECTION, SEED_ID);
  seeded.on('error', () => undefined);
  seeded.ingestSnapshot({ v: 2, type: 'json1', data: structuredClone(SEED_AFTER) });
  seeded.submitOp(ops.insert(['items', 2], 'intruder'), {}, record('op'));
  const fresh = connection.get(COLLECTION, 'fresh');
  fresh.on('error', () => undefined);
  fresh.create({ items: ['intruder'] }, 'json1', record('create'));
  return results;
}

/** Creates `collection/id` and commits one op through `connection`; throws on any refusal. */
async function createAndEdit(connection: Connection, id: string): Promise<Doc> {
  const doc = connection.get(COLLECTION, id);
  await create(doc, { items: [] });
  await submit(doc, ops.insert(['items', 0], 'hello'));
  return doc;
}

async function assertCreatedAndEdited(ctx: ServerPerTest, id: string, sub: string): Promise<void> {
  assert.deepEqual(await storeState(ctx.server, COLLECTION, id), { v: 2, data: { items: ['hello'] }, ops: 2, users: [sub, sub] });
}

/** socket.io client (the project's shim) presenting whatever `auth()` returns at each handshake. */
function tokenSocketClient(ctx: ServerPerTest, auth: () => Record<string, unknown>, codes: string[] = []) {
  const client = socketClient(ctx.server.url, {
    handshakeAuth: async () => auth(),
    onConnectError: (err) => codes.push(String(err.code)),
  });
  ctx.closers.push(async () => client.close());
  return client;
}

function trackStock(ctx: ServerPerTest, client: TokenStockClient): TokenStockClient {
  ctx.closers.push(() => client.close());
  return client;
}

async function waitConnected(connection: Connection, what: string): Promise<void> {
  await waitFor(() => connection.state === 'connected', { what: `${what} connected (state ${connection.state})` });
}

function errorCode(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code;
}

/** Resolves with the error code a ShareDB callback API ended with (null for success). */
function outcome(run: (callback: (err?: unknown) => void) => void): Promise<unknown> {
  return new Promise((resolve) => run((err) => resolve(err ? errorCode(err) : null)));
}

async function hs256(payload: JWTPayload, secret = TEST_JWT_SECRET): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}

/** Milliseconds since the epoch at which `token` stops being valid (its `exp`). */
function expiryOf(token: string): number {
  const exp = decodeJwt(token).exp;
  assert.equal(typeof exp, 'number', 'token has an exp');
  return exp! * 1000;
}

/** Polls until `token` has expired (no fixed sleep: the deadline is its own `exp`). */
async function waitUntilExpired(token: string): Promise<void> {
  const expiresAt = expiryOf(token);
  await waitFor(() => Date.now() >= expiresAt + 5, { timeoutMs: expiresAt - Date.now() + 5_000, intervalMs: 25, what: 'token expiry' });
}

async function emitAuth(socket: Socket, token: unknown): Promise<unknown> {
  return socket.timeout(5_000).emitWithAck(AUTH_REFRESH_EVENT, token);
}

describe('auth over the wire: tokens, expiry, refresh, origins, /metrics, config', function () {
  describe('HS256 with issuer and audience: refused tokens on both transports', function () {
    const ctx = useServerPerTest({ ...AUTH_ENV, AUTH_JWT_ISSUER: ISSUER, AUTH_JWT_AUDIENCE: AUDIENCE });
    beforeEach(() => seed(ctx));

    const valid = (sub = 'alice') => testToken(sub, { issuer: ISSUER, audience: AUDIENCE });
    const refusals: Array<{ name: string; token: () => Promise<string | undefined> }> = [
      { name: 'no token', token: async () => undefined },
      { name: 'a malformed token', token: async () => 'not-a-jwt' },
      { name: 'a token with three garbage segments', token: async () => 'eyJhbGciOiJIUzI1NiJ9.e30.AAAA' },
      { name: 'a wrong signature', token: () => testToken('alice', { secret: OTHER_SECRET, issuer: ISSUER, audience: AUDIENCE }) },
      { name: 'an expired token', token: () => testToken('alice', { ttlSeconds: -60, issuer: ISSUER, audience: AUDIENCE }) },
      { name: 'a wrong issuer', token: () => testToken('alice', { issuer: 'https://elsewhere.test', audience: AUDIENCE }) },
      { name: 'no issuer', token: () => testToken('alice', { audience: AUDIENCE }) },
      { name: 'a wrong audience', token: () => testToken('alice', { issuer: ISSUER, audience: 'another-service' }) },
      { name: 'no sub', token: () => hs256({ iss: ISSUER, aud: AUDIENCE }) },
      { name: 'an empty sub', token: () => hs256({ sub: '', iss: ISSUER, aud: AUDIENCE }) },
      // An unsigned token must never pass, whatever its claims say.
      {
        name: 'alg "none"',
        token: async () => new UnsecuredJWT({ sub: 'alice', iss: ISSUER, aud: AUDIENCE }).setExpirationTime('1h').encode(),
      },
    ];

    for (const { name, token } of refusals) {
      it(`socket.io: ${name} is a connect_error TANDEM_UNAUTHENTICATED, and nothing is written`, async () => {
        const value = await token();
        const auth = value === undefined ? {} : { token: value };
        // The raw refusal, on both socket.io transports.
        for (const transport of ['websocket', 'polling'] as const) {
          const result = await socketIoHandshake(ctx.server.url, auth, [transport]);
          if (result.kind === 'connected') result.socket.disconnect();
          assert.equal(result.kind, 'refused', `${transport} handshake was accepted`);
          assert.equal(result.code, TandemErrorCode.UNAUTHENTICATED, `${transport}: ${result.message}`);
        }
        // A ShareDB client that keeps trying (its shim reconnects) with writes pending.
        const codes: string[] = [];
        const client = tokenSocketClient(ctx, () => auth, codes);
        const results = attemptWrites(client.connection);
        await waitFor(() => codes.length >= 2, { what: 'two refused handshakes' });
        client.close();
        assert.deepEqual([...new Set(codes)], [TandemErrorCode.UNAUTHENTICATED]);
        assert.deepEqual(results, [], 'no write was ever answered');
        await assertSeedUntouched(ctx);
      });

      it(`/sharedb: ${name} is an HTTP 401 TANDEM_UNAUTHENTICATED, and nothing is written`, async () => {
        const value = await token();
        const ways = value === undefined ? [{}] : [{ bearer: value }, { queryToken: value }];
        for (const way of ways) {
          const result = await tryUpgrade(ctx.server.url, way);
          if (result.kind === 'open') await closeWs(result.ws);
          assert.equal(result.kind, 'refused', `upgrade with ${JSON.stringify(Object.keys(way))} was accepted`);
          if (result.kind !== 'refused') return;
          assert.equal(result.status, 401);
          assert.match(String(result.headers['content-type']), /application\/json/);
          assert.equal(jsonBody(result).error?.code, TandemErrorCode.UNAUTHENTICATED, result.body);
        }
        // A stock ShareDB client with writes pending on the refused socket.
        const client = trackStock(ctx, tokenStockClient(ctx.server.url, value === undefined ? {} : { bearer: value }));
        const results = attemptWrites(client.connection);
        await waitFor(() => client.refused, { what: 'refused upgrade' });
        assert.equal(client.refused!.status, 401);
        assert.equal(jsonBody(client.refused!).error?.code, TandemErrorCode.UNAUTHENTICATED);
        await client.close();
        assert.deepEqual(results, [], 'no write was ever answered');
        await assertSeedUntouched(ctx);
      });
    }

    it('socket.io: a token that is not a string is refused with TANDEM_UNAUTHENTICATED', async () => {
      for (const token of [12345, { sub: 'alice' }, ['a.b.c'], null]) {
        const result = await socketIoHandshake(ctx.server.url, { token });
        if (result.kind === 'connected') result.socket.disconnect();
        assert.equal(result.kind === 'refused' ? result.code : 'connected', TandemErrorCode.UNAUTHENTICATED, JSON.stringify(token));
      }
      await assertSeedUntouched(ctx);
    });

    it('/sharedb: an Authorization header that is not Bearer is refused, even with a valid ?token=', async () => {
      // The header wins when present (a proxy's Basic auth must not be mistaken for ours).
      const result = await tryUpgrade(ctx.server.url, {
        authorization: `Basic ${Buffer.from('a:b').toString('base64')}`,
        queryToken: await valid(),
      });
      if (result.kind === 'open') await closeWs(result.ws);
      assert.equal(result.kind === 'refused' ? result.status : 101, 401);
    });

    it('a valid token works on socket.io: create and an op are committed for its sub', async () => {
      const token = await valid('alice');
      const client = tokenSocketClient(ctx, () => ({ token }));
      await createAndEdit(client.connection, 'by-socketio');
      await assertCreatedAndEdited(ctx, 'by-socketio', 'alice');
      // And the raw handshake is accepted on both socket.io transports.
      for (const transport of ['websocket', 'polling'] as const) {
        const result = await socketIoHandshake(ctx.server.url, { token }, [transport]);
        assert.equal(result.kind, 'connected', transport);
        if (result.kind === 'connected') result.socket.disconnect();
      }
      await assertSeedUntouched(ctx);
    });

    it('a valid token works on /sharedb, as a Bearer header and as ?token=', async () => {
      const token = await valid('bob');
      const byHeader = trackStock(ctx, tokenStockClient(ctx.server.url, { bearer: token }));
      await createAndEdit(byHeader.connection, 'by-header');
      await assertCreatedAndEdited(ctx, 'by-header', 'bob');
      const byQuery = trackStock(ctx, tokenStockClient(ctx.server.url, { queryToken: token }));
      await createAndEdit(byQuery.connection, 'by-query');
      await assertCreatedAndEdited(ctx, 'by-query', 'bob');
      assert.equal(byHeader.refused, null);
      assert.equal(byQuery.refused, null);
    });
  });

  describe('RS256 public key (AUTH_JWT_PUBLIC_KEY)', function () {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const rs256 = (key: KeyObject, sub = 'rita') =>
      new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject(sub).setExpirationTime('1h').sign(key);
    const ctx = useServerPerTest({ AUTH_JWT_PUBLIC_KEY: pem });

    it('accepts tokens signed with the private key on both transports', async () => {
      const token = await rs256(privateKey);
      const sio = tokenSocketClient(ctx, () => ({ token }));
      await createAndEdit(sio.connection, 'rs-sio');
      await assertCreatedAndEdited(ctx, 'rs-sio', 'rita');
      const ws = trackStock(ctx, tokenStockClient(ctx.server.url, { bearer: token }));
      await createAndEdit(ws.connection, 'rs-ws');
      await assertCreatedAndEdited(ctx, 'rs-ws', 'rita');
    });

    it('refuses a token signed with another key, and an HS256 token keyed with the public PEM', async () => {
      // The second is the classic algorithm confusion: the public key used as an HMAC secret.
      const forged = [
        await rs256(other.privateKey),
        await new SignJWT({ sub: 'rita' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(pem)),
      ];
      for (const token of forged) {
        const sio = await socketIoHandshake(ctx.server.url, { token });
        if (sio.kind === 'connected') sio.socket.disconnect();
        assert.equal(sio.kind === 'refused' ? sio.code : 'connected', TandemErrorCode.UNAUTHENTICATED);
        const ws = await tryUpgrade(ctx.server.url, { bearer: token });
        if (ws.kind === 'open') await closeWs(ws.ws);
        assert.equal(ws.kind === 'refused' ? jsonBody(ws).error?.code : 'open', TandemErrorCode.UNAUTHENTICATED);
      }
      assert.equal((await storeState(ctx.server, COLLECTION, 'rs-sio')).v, 0);
    });
  });

  describe('EdDSA key set (AUTH_JWKS_FILE)', function () {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const other = generateKeyPairSync('ed25519');
    const KID = 'tandem-test-key-1';
    const env: Record<string, string> = {};
    let dir = '';
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'tandem-jwks-'));
      const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: 'EdDSA', use: 'sig' };
      env.AUTH_JWKS_FILE = join(dir, 'jwks.json');
      writeFileSync(env.AUTH_JWKS_FILE, JSON.stringify({ keys: [jwk] }));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));
    // Reads `env` at each beforeEach, after `before` wrote the key set.
    const ctx = useServerPerTest(env);
    const eddsa = (key: KeyObject, kid = KID, sub = 'eve') =>
      new SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid }).setSubject(sub).setExpirationTime('1h').sign(key);

    it("accepts tokens signed with the key set's key on both transports", async () => {
      const token = await eddsa(privateKey);
      const sio = tokenSocketClient(ctx, () => ({ token }));
      await createAndEdit(sio.connection, 'ed-sio');
      await assertCreatedAndEdited(ctx, 'ed-sio', 'eve');
      const ws = trackStock(ctx, tokenStockClient(ctx.server.url, { queryToken: token }));
      await createAndEdit(ws.connection, 'ed-ws');
      await assertCreatedAndEdited(ctx, 'ed-ws', 'eve');
    });

    it('refuses a token signed with another key (same kid, or a kid not in the set)', async () => {
      for (const token of [await eddsa(other.privateKey), await eddsa(other.privateKey, 'unknown-kid')]) {
        const sio = await socketIoHandshake(ctx.server.url, { token });
        if (sio.kind === 'connected') sio.socket.disconnect();
        assert.equal(sio.kind === 'refused' ? sio.code : 'connected', TandemErrorCode.UNAUTHENTICATED);
        const ws = await tryUpgrade(ctx.server.url, { bearer: token });
        if (ws.kind === 'open') await closeWs(ws.ws);
        assert.equal(ws.kind === 'refused' ? jsonBody(ws).error?.code : 'open', TandemErrorCode.UNAUTHENTICATED);
      }
    });
  });

  describe('token expiry on an open connection', function () {
    const ctx = useServerPerTest(AUTH_ENV);

    it('after exp, requests over /sharedb and socket.io get TANDEM_TOKEN_EXPIRED and nothing is committed', async () => {
      const token = await testToken('alice', { ttlSeconds: 2 });
      const ws = trackStock(ctx, tokenStockClient(ctx.server.url, { bearer: token }));
      const sio = tokenSocketClient(ctx, () => ({ token }));
      // While the token is valid both can write (mintToken sets exp = floor(now in s) + 2, so
      // at least 1 s is left for this).
      const wsDoc = await createAndEdit(ws.connection, 'exp-ws');
      const sioDoc = await createAndEdit(sio.connection, 'exp-sio');
      assert.ok(Date.now() < expiryOf(token), 'the writes above ran before exp');

      await waitUntilExpired(token);

      for (const [doc, connection] of [
        [wsDoc, ws.connection],
        [sioDoc, sio.connection],
      ] as const) {
        doc.on('error', () => undefined);
        assert.equal(await outcome((cb) => doc.fetch(cb)), TandemErrorCode.TOKEN_EXPIRED, 'fetch');
        assert.equal(await outcome((cb) => doc.submitOp(ops.insert(['items', 1], 'late'), {}, cb)), TandemErrorCode.TOKEN_EXPIRED, 'op');
        const late = connection.get(COLLECTION, `${doc.id}-late`);
        late.on('error', () => undefined);
        assert.equal(await outcome((cb) => late.create({ items: [] }, 'json1', cb)), TandemErrorCode.TOKEN_EXPIRED, 'create');
        assert.deepEqual(await storeState(ctx.server, COLLECTION, doc.id), {
          v: 2,
          data: { items: ['hello'] },
          ops: 2,
          users: ['alice', 'alice'],
        });
        assert.equal((await storeState(ctx.server, COLLECTION, `${doc.id}-late`)).ops, 0);
      }
    });
  });

  describe('tandem:auth refresh on socket.io', function () {
    const ctx = useServerPerTest(AUTH_ENV);

    it('acks a same-sub token with {ok: true}; refuses another sub (TANDEM_FORBIDDEN) and bad tokens', async () => {
      const result = await socketIoHandshake(ctx.server.url, { token: await testToken('alice') });
      assert.equal(result.kind, 'connected');
      if (result.kind !== 'connected') return;
      const socket = result.socket;
      ctx.closers.push(async () => void socket.disconnect());
      assert.deepEqual(await emitAuth(socket, await testToken('alice', { ttlSeconds: 7200 })), { ok: true });
      const forbidden = (await emitAuth(socket, await testToken('bob'))) as { error?: { code?: unknown } };
      assert.equal(forbidden.error?.code, TandemErrorCode.FORBIDDEN);
      for (const bad of [
        'not-a-jwt',
        await testToken('alice', { secret: OTHER_SECRET }),
        await testToken('alice', { ttlSeconds: -60 }),
        42,
      ]) {
        const answer = (await emitAuth(socket, bad)) as { error?: { code?: unknown } };
        assert.equal(answer.error?.code, TandemErrorCode.UNAUTHENTICATED, String(bad));
      }
      assert.ok(socket.connected, 'a refused refresh does not drop the connection');
    });

    it('a same-sub refresh outlives the first token; a refused other-sub refresh changes nothing', async () => {
      // 3 s rather than 2: two clients connect and write before it runs out (≥2 s left).
      const first = await testToken('alice', { ttlSeconds: 3 });
      let current = first;
      const refreshed = tokenSocketClient(ctx, () => ({ token: current }));
      const hijacker = tokenSocketClient(ctx, () => ({ token: first }));
      await waitConnected(refreshed.connection, 'refreshing client');
      await waitConnected(hijacker.connection, 'other-sub client');
      const refreshedDoc = await createAndEdit(refreshed.connection, 'refresh-same');
      const hijackerDoc = await createAndEdit(hijacker.connection, 'refresh-other');

      current = await testToken('alice', { ttlSeconds: 3600 });
      assert.equal(await refreshed.shim.sendAuth({ token: current }), true);
      assert.equal(await hijacker.shim.sendAuth({ token: await testToken('mallory', { ttlSeconds: 3600 }) }), false);

      await waitUntilExpired(first);
      // Same socket: the refreshed identity carries on past the first token's exp.
      await submit(refreshedDoc, ops.insert(['items', 1], 'after refresh'));
      await fetchDoc(refreshedDoc);
      assert.deepEqual(await storeState(ctx.server, COLLECTION, 'refresh-same'), {
        v: 3,
        data: { items: ['hello', 'after refresh'] },
        ops: 3,
        users: ['alice', 'alice', 'alice'],
      });
      // The other connection still runs on its expired first token: not mallory's.
      hijackerDoc.on('error', () => undefined);
      assert.equal(
        await outcome((cb) => hijackerDoc.submitOp(ops.insert(['items', 1], 'as mallory'), {}, cb)),
        TandemErrorCode.TOKEN_EXPIRED,
      );
      assert.deepEqual(await storeState(ctx.server, COLLECTION, 'refresh-other'), {
        v: 2,
        data: { items: ['hello'] },
        ops: 2,
        users: ['alice', 'alice'],
      });
    });
  });

  describe('origins on a loopback bind without CORS_ORIGINS', function () {
    const ctx = useServerPerTest();
    const EVIL = 'https://evil.example';

    it('refuses a foreign Origin on /sharedb, socket.io polling and websocket, and HTTP routes', async () => {
      const sharedb = await tryUpgrade(ctx.server.url, { origin: EVIL });
      if (sharedb.kind === 'open') await closeWs(sharedb.ws);
      assert.equal(sharedb.kind === 'refused' ? sharedb.status : 101, 403);
      if (sharedb.kind === 'refused') assert.equal(jsonBody(sharedb).error?.code, TandemErrorCode.ORIGIN_FORBIDDEN, sharedb.body);

      const polling = await httpGet(ctx.server.url, SIO_POLLING_HANDSHAKE, { origin: EVIL });
      assert.equal(polling.status, 403);
      assert.match(polling.body, /TANDEM_ORIGIN_FORBIDDEN/);
      assert.equal(polling.headers['access-control-allow-origin'], undefined);

      const upgrade = await tryUpgrade(ctx.server.url, { path: SIO_WS_UPGRADE, origin: EVIL });
      if (upgrade.kind === 'open') await closeWs(upgrade.ws);
      assert.equal(upgrade.kind, 'refused', 'socket.io websocket upgrade from a foreign origin was accepted');
      if (upgrade.kind === 'refused') {
        // Refused before engine.io (whose own refusal is a bare 400), like every other route.
        assert.equal(upgrade.status, 403);
        assert.match(upgrade.body, /TANDEM_ORIGIN_FORBIDDEN/);
      }

      for (const path of ['/healthz', '/readyz', '/metrics', '/metrics.json', '/no-such-route']) {
        const answer = await httpGet(ctx.server.url, path, { origin: EVIL });
        assert.equal(answer.status, 403, path);
        assert.equal((JSON.parse(answer.body) as { error?: { code?: unknown } }).error?.code, TandemErrorCode.ORIGIN_FORBIDDEN, path);
        assert.equal(answer.headers['access-control-allow-origin'], undefined, path);
      }
      // Origins that only look local.
      for (const origin of ['http://localhost.evil.example', 'http://127.0.0.1.evil.example', 'null', 'file://', 'ftp://localhost']) {
        assert.equal((await httpGet(ctx.server.url, '/healthz', { origin })).status, 403, origin);
      }
    });

    it('allows loopback origins everywhere, with access-control-allow-origin; no Origin is allowed too', async () => {
      for (const origin of ['http://localhost:5173', 'https://127.0.0.1:8443', 'http://[::1]:3000', 'http://127.8.9.10']) {
        const health = await httpGet(ctx.server.url, '/healthz', { origin });
        assert.equal(health.status, 200, origin);
        assert.equal(health.headers['access-control-allow-origin'], origin);

        const polling = await httpGet(ctx.server.url, SIO_POLLING_HANDSHAKE, { origin });
        assert.equal(polling.status, 200, `${origin}: ${polling.body}`);
        assert.equal(polling.headers['access-control-allow-origin'], origin);

        for (const path of [undefined, SIO_WS_UPGRADE]) {
          const upgrade = await tryUpgrade(ctx.server.url, { origin, ...(path ? { path } : {}) });
          assert.equal(upgrade.kind, 'open', `${origin} ${path ?? '/sharedb'}: ${upgrade.kind === 'refused' ? upgrade.body : ''}`);
          if (upgrade.kind === 'open') await closeWs(upgrade.ws);
        }
      }
      const preflight = await httpGet(
        ctx.server.url,
        '/metrics',
        { origin: 'http://localhost:5173', 'access-control-request-method': 'GET' },
        'OPTIONS',
      );
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], 'http://localhost:5173');

      const plain = await httpGet(ctx.server.url, '/healthz');
      assert.equal(plain.status, 200);
      assert.equal(plain.headers['access-control-allow-origin'], undefined);
      const noOrigin = await tryUpgrade(ctx.server.url);
      assert.equal(noOrigin.kind, 'open');
      if (noOrigin.kind === 'open') await closeWs(noOrigin.ws);
    });

    it('on a non-loopback bind without CORS_ORIGINS no browser origin is allowed, loopback included', () => {
      // Binding a public interface in a test is not possible everywhere: the policy is built
      // as startServer builds it.
      const policy = createOriginPolicy(loadConfig({ HOST: '0.0.0.0', ...AUTH_ENV }).corsOrigins, '0.0.0.0');
      assert.equal(policy.allows('http://localhost:5173'), false);
      assert.equal(policy.allows('https://app.example.com'), false);
      assert.equal(policy.allows(undefined), true);
    });
  });

  describe('origins with CORS_ORIGINS', function () {
    const LISTED = 'https://app.example.com';
    const ctx = useServerPerTest({ CORS_ORIGINS: `${LISTED}, https://other.example.com:8443` });

    it('allows the listed origin on every entry point', async () => {
      const health = await httpGet(ctx.server.url, '/healthz', { origin: LISTED });
      assert.equal(health.status, 200);
      assert.equal(health.headers['access-control-allow-origin'], LISTED);
      const polling = await httpGet(ctx.server.url, SIO_POLLING_HANDSHAKE, { origin: LISTED });
      assert.equal(polling.status, 200, polling.body);
      assert.equal(polling.headers['access-control-allow-origin'], LISTED);
      for (const path of [undefined, SIO_WS_UPGRADE]) {
        const upgrade = await tryUpgrade(ctx.server.url, { origin: LISTED, ...(path ? { path } : {}) });
        assert.equal(upgrade.kind, 'open', path ?? '/sharedb');
        if (upgrade.kind === 'open') await closeWs(upgrade.ws);
      }
      // A socket.io client sending that Origin gets through and can write.
      const client = socketClient(ctx.server.url, { transports: ['polling'], socketOptions: { extraHeaders: { origin: LISTED } } });
      ctx.closers.push(async () => client.close());
      await createAndEdit(client.connection, 'cors-listed');
      assert.equal((await storeState(ctx.server, COLLECTION, 'cors-listed')).v, 2);
    });

    it('refuses an unlisted loopback origin (the list replaces the loopback default)', async () => {
      for (const origin of ['http://localhost:5173', 'https://app.example.com:444', 'http://app.example.com']) {
        assert.equal((await httpGet(ctx.server.url, '/healthz', { origin })).status, 403, origin);
        assert.equal((await httpGet(ctx.server.url, SIO_POLLING_HANDSHAKE, { origin })).status, 403, origin);
        for (const path of [undefined, SIO_WS_UPGRADE]) {
          const upgrade = await tryUpgrade(ctx.server.url, { origin, ...(path ? { path } : {}) });
          if (upgrade.kind === 'open') await closeWs(upgrade.ws);
          assert.equal(upgrade.kind, 'refused', `${origin} ${path ?? '/sharedb'}`);
          if (upgrade.kind === 'refused') assert.match(upgrade.body, /TANDEM_ORIGIN_FORBIDDEN/);
        }
      }
    });
  });

  describe('/metrics with auth on', function () {
    const METRICS_TOKEN = 'scraper-token-0123456789';
    const ctx = useServerPerTest({ ...AUTH_ENV, METRICS_TOKEN });

    it('is 401 without a token or with a bad one, 200 with METRICS_TOKEN or a user token; probes stay public', async () => {
      const refused: Array<Record<string, string>> = [
        {},
        { authorization: 'Bearer wrong' },
        { authorization: `Basic ${METRICS_TOKEN}` },
        { authorization: `Bearer ${await testToken('alice', { secret: OTHER_SECRET })}` },
        { authorization: `Bearer ${await testToken('alice', { ttlSeconds: -60 })}` },
      ];
      for (const [headers, path] of refused.flatMap((h) => [[h, '/metrics'] as const, [h, '/metrics.json'] as const])) {
        const answer = await httpGet(ctx.server.url, path, headers);
        assert.equal(answer.status, 401, `${path} ${JSON.stringify(headers)}`);
        assert.equal((JSON.parse(answer.body) as { error?: { code?: unknown } }).error?.code, TandemErrorCode.UNAUTHENTICATED);
        assert.match(String(answer.headers['www-authenticate']), /^Bearer/);
      }
      assert.equal((await httpGet(ctx.server.url, '/metrics', { authorization: `Bearer ${METRICS_TOKEN}` })).status, 200);
      assert.equal((await httpGet(ctx.server.url, '/metrics.json', { authorization: `Bearer ${METRICS_TOKEN}` })).status, 200);
      assert.equal((await httpGet(ctx.server.url, '/metrics', { authorization: `Bearer ${await testToken('alice')}` })).status, 200);
      assert.equal((await httpGet(ctx.server.url, '/healthz')).status, 200);
      assert.equal((await httpGet(ctx.server.url, '/readyz')).status, 200);
    });
  });

  describe('/metrics with auth off', function () {
    const ctx = useServerPerTest();

    it('is public', async () => {
      const answer = await httpGet(ctx.server.url, '/metrics');
      assert.equal(answer.status, 200, answer.body);
      assert.match(String(answer.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      const json = await httpGet(ctx.server.url, '/metrics.json');
      assert.equal(json.status, 200, json.body);
      assert.equal(typeof JSON.parse(json.body), 'object');
    });
  });

  describe('configuration', function () {
    function configError(source: Record<string, string>): ConfigError {
      try {
        loadConfig(source);
      } catch (err) {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
        assert.equal(err.code, 'TANDEM_BAD_CONFIG');
        return err;
      }
      assert.fail(`loadConfig(${JSON.stringify(source)}) did not throw`);
    }

    it('refuses a non-loopback HOST without auth, unless AUTH=none is explicit', () => {
      for (const HOST of ['0.0.0.0', '::', '192.168.1.10', 'example.com'])
        assert.match(configError({ HOST }).message, /AUTH=none|AUTH_JWT_SECRET/);
      const open = loadConfig({ HOST: '0.0.0.0', AUTH: 'none' });
      assert.deepEqual(open.auth, { mode: 'none', explicit: true });
      assert.equal(loadConfig({ HOST: '0.0.0.0', ...AUTH_ENV }).auth.mode, 'jwt');
      // Loopback binds may run open without saying so.
      for (const HOST of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.0.0.2'])
        assert.deepEqual(loadConfig({ HOST }).auth, { mode: 'none', explicit: false });
    });

    it('refuses contradictory or weak auth settings', () => {
      configError({ AUTH: 'none', AUTH_JWT_SECRET: TEST_JWT_SECRET });
      configError({ HOST: '0.0.0.0', AUTH: 'none', AUTH_JWT_SECRET: TEST_JWT_SECRET });
      assert.match(configError({ AUTH_JWT_SECRET: 'x'.repeat(31) }).message, /32 bytes/);
      assert.equal(loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(32) }).auth.mode, 'jwt');
      configError({ AUTH: 'jwt' });
      configError({ AUTH: 'maybe' });
      configError({ AUTH_JWT_SECRET: TEST_JWT_SECRET, AUTH_JWKS_FILE: '/tmp/keys.json' });
    });

    it('refuses CORS_ORIGINS entries that are not bare origins', () => {
      for (const CORS_ORIGINS of [
        'https://app.example.com/app',
        'https://app.example.com/app/',
        'app.example.com',
        'https://app.example.com?x=1',
      ]) {
        configError({ CORS_ORIGINS });
      }
      assert.deepEqual(loadConfig({ CORS_ORIGINS: 'https://a.example.com/, http://localhost:3000' }).corsOrigins, [
        'https://a.example.com',
        'http://localhost:3000',
      ]);
      assert.deepEqual(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins, ['*']);
    });
  });
});
