import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startClientProcess, type ClientProcess } from '../helpers/sdk-process.js';
import { counts, sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { AUTH_ENV, testToken } from '../helpers/auth.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { SqliteOutboxStore } from '../../client/node.js';
import type { OutboxStore } from '../../client/offline/outbox-store.js';

const EDITS = 100;
const expected = Array.from({ length: EDITS }, (_, i) => `edit-${i}`);

/** `store` with a `load()` that waits for `release()`: a slow outbox read, held by the test. */
function slowLoadStore(store: OutboxStore): { store: OutboxStore; loads: () => number; release: () => void } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let loads = 0;
  const wrapped: OutboxStore = {
    name: store.name,
    load: async (key) => {
      loads++;
      await released;
      return store.load(key);
    },
    save: (record) => store.save(record),
    remove: (key) => store.remove(key),
    keys: () => store.keys(),
    close: () => store.close(),
  };
  return { store: wrapped, loads: () => loads, release };
}

/** `promise`, or a rejection with `message` after `ms` (the timer is cleared either way). */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

for (const auth of [false, true])
  describe(`sdk: a Node client process killed with SIGKILL resumes from its outbox${auth ? ' (authenticated: same user, source ids bound to it)' : ''}`, function () {
    this.timeout(40_000);
    let server: TestServer;
    let token = '';
    let dir: string;
    const processes: ClientProcess[] = [];
    const closers: Array<() => Promise<void>> = [];

    beforeEach(async () => {
      server = await startTestServer(auth ? AUTH_ENV : {});
      // Each process run asks for its token again; both runs are the same user.
      if (auth) token = await testToken('restart-user');
      dir = mkdtempSync(join(tmpdir(), 'tandem-sdk-restart-'));
    });
    afterEach(async () => {
      for (const p of processes.splice(0)) await p.kill();
      for (const close of closers.splice(0)) await close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    async function createDoc(id: string): Promise<void> {
      const setup = sdkClient(server.url, closers, auth ? { getToken: () => testToken('setup-user') } : {});
      const doc = setup.doc<{ items: string[] }>('notes', id, { create: { items: [] } });
      await doc.ready;
      await doc.whenSynced();
    }

    function spawnClient(env: Record<string, string>): ClientProcess {
      const p = startClientProcess({
        TANDEM_URL: server.url,
        OUTBOX_PATH: join(dir, 'outbox.db'),
        ...(auth ? { TOKEN: token } : {}),
        ...env,
      });
      processes.push(p);
      return p;
    }

    async function resumeAndCheck(id: string): Promise<void> {
      const resumed = spawnClient({ MODE: 'resume', DOC_ID: id });
      const restored = await resumed.next('restored');
      // Still offline, the restarted process shows every edit of the killed one.
      assert.equal(restored.state, 'offline');
      assert.deepEqual(restored.items, expected);
      resumed.send('online');
      const synced = await resumed.next('synced');
      assert.equal(await resumed.exited(), 0);
      assert.deepEqual(synced.items, expected);
      const onServer = await serverSnapshot(server, 'notes', id);
      assert.equal(onServer.v, synced.version);
      const items = (onServer.data as { items: string[] }).items;
      assert.deepEqual(items, expected, 'the server has each edit exactly once, in order');
      assert.ok([...counts(items).values()].every((n) => n === 1));
    }

    it('100 offline edits survive SIGKILL and reach the server exactly once after the restart', async () => {
      await createDoc('offline-100');
      const editor = spawnClient({ MODE: 'edit', DOC_ID: 'offline-100', EDITS: String(EDITS) });
      const saved = await editor.next('saved');
      assert.deepEqual(saved.items, expected);
      await editor.kill();
      assert.equal(editor.child.signalCode, 'SIGKILL');
      // Nothing reached the server while the process was offline.
      assert.deepEqual((await serverSnapshot(server, 'notes', 'offline-100')).data, { items: [] });
      await resumeAndCheck('offline-100');
    });

    it('a process killed with 100 one-op edits in flight resends them without duplicating committed ones', async () => {
      await createDoc('inflight-100');
      const editor = spawnClient({ MODE: 'edit', DOC_ID: 'inflight-100', EDITS: String(EDITS), ONLINE: '1', COMPOSE: '0' });
      await editor.next('saved');
      await editor.kill();
      const before = (await serverSnapshot(server, 'notes', 'inflight-100')).data as { items: string[] };
      // Some edits were committed before the kill, in order; the rest were not.
      assert.deepEqual(before.items, expected.slice(0, before.items.length));
      console.log(`      (${before.items.length} of ${EDITS} edits were committed before the kill)`);
      await resumeAndCheck('inflight-100');
    });

    it('an op restored from the outbox after the connection came up is sent (slow outbox read)', async () => {
      await createDoc('slow-load');
      const editor = spawnClient({ MODE: 'edit', DOC_ID: 'slow-load', EDITS: '1' });
      assert.deepEqual((await editor.next('saved')).items, ['edit-0']);
      await editor.kill();
      assert.deepEqual((await serverSnapshot(server, 'notes', 'slow-load')).data, { items: [] });

      // The restart, in this process: its outbox read finishes only once it is online.
      const sqlite = new SqliteOutboxStore({ path: join(dir, 'outbox.db') });
      const slow = slowLoadStore(sqlite);
      // Teardown (in order): let a held read finish, close the client, then the store.
      closers.push(async () => slow.release());
      const client = sdkClient(server.url, closers, { outbox: slow.store, ...(auth ? { getToken: () => token } : {}) });
      closers.push(() => sqlite.close());
      const doc = client.doc<{ items: string[] }>('notes', 'slow-load');
      await within(client.whenOnline(), 10_000, 'the restarted client never came online');
      await waitFor(() => slow.loads() > 0, { what: 'the outbox read to start' });
      slow.release();
      await doc.ready;
      assert.deepEqual(doc.data?.items, ['edit-0']);
      assert.equal(doc.pendingCount, 1);
      await within(
        doc.whenSynced(),
        10_000,
        `the restored op was never sent: still ${doc.pendingCount} pending 10 s after the outbox read`,
      );
      assert.equal(doc.pendingCount, 0);
      const onServer = await serverSnapshot(server, 'notes', 'slow-load');
      assert.equal(onServer.v, doc.version);
      assert.deepEqual(onServer.data, { items: ['edit-0'] }, 'the server has the edit exactly once');
    });
  });
