import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import { IDBFactory } from 'fake-indexeddb';
import { IndexedDbOutboxStore, MemoryOutboxStore, SqliteOutboxStore, type OutboxRecord, type OutboxStore } from '../../client/node.js';

/** Opens a store; `reopen` gives a new instance over the same storage (a restart). */
interface StoreCase {
  name: string;
  open(): { store: OutboxStore; reopen(): OutboxStore; corrupt?(collection: string, id: string): void; cleanup(): void };
}

const cases: StoreCase[] = [
  {
    name: 'MemoryOutboxStore',
    open: () => {
      const store = new MemoryOutboxStore();
      return { store, reopen: () => store, cleanup: () => undefined };
    },
  },
  {
    name: 'IndexedDbOutboxStore (fake-indexeddb)',
    open: () => {
      const factory = new IDBFactory();
      return {
        store: new IndexedDbOutboxStore({ indexedDB: factory, databaseName: 'outbox-test' }),
        reopen: () => new IndexedDbOutboxStore({ indexedDB: factory, databaseName: 'outbox-test' }),
        cleanup: () => undefined,
      };
    },
  },
  {
    name: 'SqliteOutboxStore',
    open: () => {
      const dir = mkdtempSync(join(tmpdir(), 'tandem-outbox-'));
      const path = join(dir, 'nested', 'outbox.db');
      return {
        store: new SqliteOutboxStore({ path }),
        reopen: () => new SqliteOutboxStore({ path }),
        corrupt: (collection, id) => {
          const db = new Database(path);
          db.prepare('INSERT OR REPLACE INTO outbox (key, record) VALUES (?, ?)').run(JSON.stringify([collection, id]), '{"nope":1}');
          db.close();
        },
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
];

function record(collection: string, id: string, version: number, pending = 2): OutboxRecord {
  return {
    collection,
    id,
    version,
    type: 'http://sharejs.org/types/JSONv1',
    snapshot: { title: `v${version}`, list: [1, 2, { deep: [true, null] }] },
    pending: Array.from({ length: pending }, (_, i) => ({ src: 'client-a', seq: i + 1, op: ['list', i, { i: i }] })),
    savedAt: 1_700_000_000_000 + version,
  };
}

for (const c of cases) {
  describe(`outbox store contract: ${c.name}`, () => {
    let opened: ReturnType<StoreCase['open']>;
    const extra: OutboxStore[] = [];
    beforeEach(() => {
      opened = c.open();
    });
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await opened.store.close();
      opened.cleanup();
    });

    it('returns null for an unknown document, and what was saved for a known one', async () => {
      assert.equal(await opened.store.load({ collection: 'notes', id: 'x' }), null);
      await opened.store.save(record('notes', 'x', 3));
      assert.deepEqual(await opened.store.load({ collection: 'notes', id: 'x' }), record('notes', 'x', 3));
    });

    it('replaces a record on save, and removes it', async () => {
      await opened.store.save(record('notes', 'x', 3));
      await opened.store.save(record('notes', 'x', 7, 0));
      assert.deepEqual(await opened.store.load({ collection: 'notes', id: 'x' }), record('notes', 'x', 7, 0));
      await opened.store.remove({ collection: 'notes', id: 'x' });
      assert.equal(await opened.store.load({ collection: 'notes', id: 'x' }), null);
    });

    it('keeps documents apart, whatever their names contain', async () => {
      const names = [
        ['notes', 'a'],
        ['notes', 'a"b'],
        ['no"tes', 'a'],
        ['x\u0000y', '[1,2]'],
      ] as const;
      for (const [i, [collection, id]] of names.entries()) await opened.store.save(record(collection, id, i));
      for (const [i, [collection, id]] of names.entries()) {
        assert.equal((await opened.store.load({ collection, id }))?.version, i);
      }
      const keys = (await opened.store.keys()).map((k) => JSON.stringify([k.collection, k.id])).sort();
      assert.deepEqual(keys, names.map(([collection, id]) => JSON.stringify([collection, id])).sort());
    });

    it('survives a restart (a new store instance over the same storage)', async () => {
      await opened.store.save(record('notes', 'durable', 5));
      const again = opened.reopen();
      if (again !== opened.store) extra.push(again);
      assert.deepEqual(await again.load({ collection: 'notes', id: 'durable' }), record('notes', 'durable', 5));
    });

    it('returns copies: changing a loaded or saved object does not change the store', async () => {
      const saved = record('notes', 'copy', 1);
      await opened.store.save(saved);
      (saved.snapshot as { title: string }).title = 'changed';
      const loaded = await opened.store.load({ collection: 'notes', id: 'copy' });
      assert.equal((loaded!.snapshot as { title: string }).title, 'v1');
    });

    if (c.name === 'SqliteOutboxStore') {
      it('refuses a record of an unexpected shape with TANDEM_OUTBOX_FAILED', async () => {
        opened.corrupt!('notes', 'bad');
        await assert.rejects(opened.store.load({ collection: 'notes', id: 'bad' }), { code: 'TANDEM_OUTBOX_FAILED' });
      });
    }
  });
}
