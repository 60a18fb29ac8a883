import assert from 'node:assert/strict';
import { MemoryOutboxStore, ops, TandemErrorCode, type TandemError } from '../../client/node.js';
import { AUTH_ENV, testToken } from '../helpers/auth.js';
import { sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { useServerPerTest } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

interface Items {
  items: number[];
}

/** The ops of a document as stored, with their metadata. */
function storedOps(fixture: ReturnType<typeof useServerPerTest>, id: string): Promise<Array<{ src: string; m: { user?: string } }>> {
  return new Promise((resolve, reject) =>
    fixture.server.backend.db.getOps('notes', id, 0, null, { metadata: true }, (err, list) =>
      err ? reject(err) : resolve(list as unknown as Array<{ src: string; m: { user?: string } }>),
    ),
  );
}

/** Each of 0..n-1 exactly once, in any order. */
function assertExactlyOnce(items: readonly number[], n: number): void {
  assert.deepEqual(
    [...items].sort((a, b) => a - b),
    Array.from({ length: n }, (_, i) => i),
  );
}

describe('sdk: authentication and token refresh', function () {
  this.timeout(40_000);
  const fixture = useServerPerTest(AUTH_ENV);
  const { closers } = fixture;

  it('refreshes a short-lived token ahead of expiry while the user types; every edit lands once, recorded as the user', async () => {
    let calls = 0;
    const client = sdkClient(fixture.server.url, closers, {
      getToken: () => {
        calls++;
        return testToken('alice', { ttlSeconds: 3 });
      },
    });
    const doc = client.doc<Items>('notes', 'refresh', { create: { items: [] } });
    await doc.ready;
    assert.match(client.id, /^YWxpY2U\./, 'the source id carries the user tag');
    let n = 0;
    // Type until the token was replaced at least twice (each lives 3 s).
    await waitFor(
      () => {
        doc.submit(ops.insert(['items', doc.data!.items.length], n++));
        return calls >= 3;
      },
      { timeoutMs: 20_000, intervalMs: 40, what: 'two token refreshes' },
    );
    await doc.whenSynced();
    assertExactlyOnce(((await serverSnapshot(fixture.server, 'notes', 'refresh')).data as Items).items, n);
    const stored = await storedOps(fixture, 'refresh');
    assert.ok(
      stored.every((op) => op.m.user === 'alice' && op.src.startsWith('YWxpY2U.')),
      'every op is recorded as alice',
    );
  });

  it('recovers when the token really expires on the server: refused ops are kept, the token refreshed, each edit committed once', async () => {
    // The first two tokens are the same short-lived one (an app handing back a cached
    // token), so the server sees it expire under the client and refuses with TOKEN_EXPIRED.
    const stale = await testToken('bob', { ttlSeconds: 2 });
    let calls = 0;
    const rejected: TandemError[] = [];
    const client = sdkClient(fixture.server.url, closers, {
      getToken: () => (++calls <= 2 ? stale : testToken('bob', { ttlSeconds: 3600 })),
    });
    const doc = client.doc<Items>('notes', 'expired', { create: { items: [] } });
    doc.on('rejected', (r) => rejected.push(r.error));
    await doc.ready;
    const expiredAt = Date.now() + 2_000;
    let n = 0;
    await waitFor(
      () => {
        doc.submit(ops.insert(['items', doc.data!.items.length], n++));
        return Date.now() > expiredAt + 1_500 && calls >= 3;
      },
      { timeoutMs: 20_000, intervalMs: 40, what: 'typing across the expiry' },
    );
    await doc.whenSynced();
    assert.deepEqual(rejected, [], 'no edit was rejected');
    const snapshot = await serverSnapshot(fixture.server, 'notes', 'expired');
    assertExactlyOnce((snapshot.data as Items).items, n);
  });

  it('gets a fresh token when it reconnects after its token expired offline; offline edits land once', async () => {
    let calls = 0;
    const outbox = new MemoryOutboxStore();
    const client = sdkClient(fixture.server.url, closers, {
      outbox,
      getToken: () => {
        calls++;
        return testToken('carol', { ttlSeconds: 2 });
      },
    });
    const doc = client.doc<Items>('notes', 'offline', { create: { items: [] } });
    await doc.ready;
    client.goOffline();
    const before = calls;
    const offlineUntil = Date.now() + 3_000;
    let n = 0;
    await waitFor(
      () => {
        doc.submit(ops.insert(['items', doc.data!.items.length], n++));
        return Date.now() > offlineUntil;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'the token to expire while offline' },
    );
    client.goOnline();
    await client.whenOnline();
    await doc.whenSynced();
    assert.ok(calls > before, 'a new token was fetched for the reconnect');
    assertExactlyOnce(((await serverSnapshot(fixture.server, 'notes', 'offline')).data as Items).items, n);
  });

  it('saves and sends edits made before the first token arrived, under the user tag', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const outbox = new MemoryOutboxStore();
    const client = sdkClient(fixture.server.url, closers, {
      outbox,
      startOffline: true,
      getToken: async () => {
        await gate;
        return testToken('dave');
      },
    });
    // Seeded by another user, so the first client only edits (no create to race).
    const seeder = sdkClient(fixture.server.url, closers, { getToken: () => testToken('seed') });
    const seeded = seeder.doc<Items>('notes', 'early', { create: { items: [] } });
    await seeded.ready;
    await seeded.whenSynced();
    const doc = client.doc<Items>('notes', 'early');
    client.goOnline();
    // The token is held back: the client cannot know its source id yet.
    assert.equal(client.id, '');
    release();
    await doc.ready;
    doc.submit(ops.insert(['items', 0], 7));
    await doc.whenSynced();
    const stored = await storedOps(fixture, 'early');
    const daves = stored.filter((op) => op.m.user === 'dave');
    assert.equal(daves.length, 1);
    assert.ok(daves[0]!.src.startsWith('ZGF2ZQ.'), 'the op carries dave’s tag');
  });

  it('reports a refused token through the client error event with TANDEM_UNAUTHENTICATED and stays offline', async () => {
    const codes: string[] = [];
    const client = sdkClient(fixture.server.url, closers, {
      getToken: () => testToken('eve', { secret: 'not-the-server-secret-not-the-server-secret' }),
    });
    client.on('error', (e) => codes.push(e.code));
    await waitFor(() => codes.length >= 1, { what: 'a connect refusal' });
    assert.equal(codes[0], TandemErrorCode.UNAUTHENTICATED);
    assert.notEqual(client.state, 'online');
  });
});
