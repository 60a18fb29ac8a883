import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import {
  IndexedDbOutboxStore,
  MemoryOutboxStore,
  SqliteOutboxStore,
  ops,
  type ConnectionState,
  type OpMeta,
  type OutboxStore,
} from '../../client/node.js';
import { useServerPerTest } from '../helpers/server.js';
import { sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { waitFor } from '../helpers/wait.js';

interface Note {
  title: string;
  items: number[];
}

describe('sdk: typed client over socket.io', function () {
  const fixture = useServerPerTest();
  const { closers } = fixture;

  it('reports connecting → online → offline → online, creates a doc and syncs edits both ways', async () => {
    const a = sdkClient(fixture.server.url, closers);
    const states: ConnectionState[] = [a.state];
    a.on('state', (s) => states.push(s));
    const docA = a.doc<Note>('notes', 'basics', { create: { title: 'hi', items: [] } });
    await docA.ready;
    assert.equal(a.state, 'online');
    assert.deepEqual(docA.data, { title: 'hi', items: [] });

    const b = sdkClient(fixture.server.url, closers);
    const docB = b.doc<Note>('notes', 'basics');
    await docB.ready;
    const seen: OpMeta['source'][] = [];
    docB.on('op', (_op, meta) => seen.push(meta.source));

    docA.submit(ops.textInsert(['title'], 2, ' there'));
    docA.submit(ops.insert(['items', 0], 1));
    assert.equal(docA.data?.title, 'hi there');
    assert.ok(docA.pendingCount >= 1);
    await docA.whenSynced();
    assert.equal(docA.pendingCount, 0);
    await waitFor(() => docB.version === docA.version, { what: 'B catches up' });
    assert.deepEqual(docB.data, docA.data);
    assert.ok(seen.length > 0 && seen.every((s) => s === 'remote'));

    a.goOffline();
    assert.equal(a.state, 'offline');
    docA.submit(ops.insert(['items', 1], 2));
    assert.equal(docA.pendingCount, 1);
    a.goOnline();
    await docA.whenSynced();
    assert.deepEqual(states.slice(0, 2), ['connecting', 'online']);
    assert.deepEqual(states.slice(-3), ['offline', 'connecting', 'online']);
    assert.deepEqual((await serverSnapshot(fixture.server, 'notes', 'basics')).data, docA.data);
  });

  it('throws a coded error for an op that does not fit the document', async () => {
    const a = sdkClient(fixture.server.url, closers);
    const doc = a.doc<Note>('notes', 'bad', { create: { title: '', items: [] } });
    await doc.ready;
    assert.throws(() => doc.submit(ops.textInsert(['missing'], 0, 'x')), { code: 'TANDEM_INVALID_OP' });
    const empty = a.doc('notes', 'never-created');
    await empty.ready;
    assert.equal(empty.exists, false);
    assert.throws(() => empty.submit(ops.insert(['x'], 1)), { code: 'TANDEM_DOC_NOT_READY' });
  });

  for (const kind of ['memory', 'indexeddb', 'sqlite'] as const) {
    it(`restores a document from a ${kind} outbox while offline, then syncs it`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tandem-sdk-basics-'));
      closers.push(async () => rmSync(dir, { recursive: true, force: true }));
      const factory = new IDBFactory();
      const memory = new MemoryOutboxStore();
      // A new store instance per run over the same storage, as after a restart.
      const openStore = (): OutboxStore =>
        kind === 'memory'
          ? memory
          : kind === 'indexeddb'
            ? new IndexedDbOutboxStore({ indexedDB: factory })
            : new SqliteOutboxStore({ path: join(dir, 'outbox.db') });

      const first = openStore();
      const a = sdkClient(fixture.server.url, closers, { outbox: first });
      const doc = a.doc<Note>('notes', `restore-${kind}`, { create: { title: 'x', items: [] } });
      await doc.ready;
      assert.equal(doc.durable, true);
      await doc.whenSynced();
      a.goOffline();
      for (let i = 0; i < 5; i++) doc.submit(ops.insert(['items', i], i));
      doc.submit(ops.textInsert(['title'], 1, 'yz'));
      await doc.whenSaved();
      await a.close();
      await first.close();

      const second = openStore();
      closers.push(() => second.close());
      const b = sdkClient(fixture.server.url, closers, { outbox: second, startOffline: true });
      assert.equal(b.state, 'offline');
      const restored = b.doc<Note>('notes', `restore-${kind}`);
      await restored.ready;
      const expected = { title: 'xyz', items: [0, 1, 2, 3, 4] };
      assert.deepEqual(restored.data, expected);
      assert.equal(restored.pendingCount, 1);
      // Still editable offline.
      restored.submit(ops.insert(['items', 5], 5));
      b.goOnline();
      await restored.whenSynced();
      assert.deepEqual((await serverSnapshot(fixture.server, 'notes', `restore-${kind}`)).data, { ...expected, items: [0, 1, 2, 3, 4, 5] });
    });
  }

  it('refuses to reopen a document whose handle is still closing', async () => {
    const a = sdkClient(fixture.server.url, closers);
    const doc = a.doc('notes', 'reopen', { create: { n: 1 } });
    await doc.ready;
    const closing = doc.close();
    assert.throws(() => a.doc('notes', 'reopen'), { code: 'TANDEM_CLOSED' });
    await closing;
    const again = a.doc<{ n: number }>('notes', 'reopen');
    await again.ready;
    assert.deepEqual(again.data, { n: 1 });
  });
});
