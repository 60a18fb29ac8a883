import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ops, SqliteOutboxStore } from '../../client/node.js';
import { GatedStore } from '../helpers/sdk-fakes.js';
import { sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { useServerPerTest } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

interface Items {
  items: string[];
}

/** `src`/`seq` of a submitted op, as ShareDB's SubmitRequest holds them. */
interface OpIdentity {
  src?: string;
  seq?: number;
  op?: unknown;
}

describe('sdk: lost acknowledgement', function () {
  const fixture = useServerPerTest();
  const { closers } = fixture;
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-sdk-ack-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('an op committed just before the connection was cut is not applied twice after a restart', async () => {
    const path = join(dir, 'outbox.db');
    const store = new SqliteOutboxStore({ path });
    const a = sdkClient(fixture.server.url, closers, { outbox: store });
    const doc = a.doc<Items>('notes', 'ack', { create: { items: [] } });
    await doc.ready;
    await doc.whenSynced();
    const base = (await serverSnapshot(fixture.server, 'notes', 'ack')).v;

    // Every submit of our op the server sees, and one cut: after the commit, before the ack.
    const submits: string[] = [];
    let cut = false;
    fixture.server.backend.use('submit', (context, next) => {
      const op = context.op as OpIdentity;
      if (context.id === 'ack') submits.push(`${op.src}:${op.seq}`);
      next();
    });
    fixture.server.backend.use('afterWrite', (context, next) => {
      if (context.id === 'ack' && !cut) {
        cut = true;
        // The client drops its socket now, synchronously, so the ack cannot reach it.
        a.goOffline();
      }
      next();
    });

    doc.submit(ops.insert(['items', 0], 'once'));
    await waitFor(() => cut, { what: 'the cut' });
    const committed = await serverSnapshot(fixture.server, 'notes', 'ack');
    assert.deepEqual(committed.data, { items: ['once'] });
    assert.equal(committed.v, base + 1);
    assert.equal(doc.pendingCount, 1, 'the client never saw the ack');

    // "Restart": close the client and its outbox, open new ones on the same file.
    await a.close();
    await store.close();
    const store2 = new SqliteOutboxStore({ path });
    closers.push(() => store2.close());
    const b = sdkClient(fixture.server.url, closers, { outbox: store2, startOffline: true });
    const restored = b.doc<Items>('notes', 'ack');
    await restored.ready;
    assert.equal(restored.pendingCount, 1);
    assert.deepEqual(restored.data, { items: ['once'] });
    b.goOnline();
    await restored.whenSynced();

    const after = await serverSnapshot(fixture.server, 'notes', 'ack');
    assert.deepEqual(after.data, { items: ['once'] }, 'applied once');
    assert.equal(after.v, base + 1, 'no second commit');
    assert.deepEqual(restored.data, after.data);
    assert.equal(restored.version, after.v);
    // The restarted client resent the same op (same src and seq); the server recognised it.
    assert.equal(submits.length, 2);
    assert.equal(submits[0], submits[1]);
    assert.equal(restored.pendingCount, 0);
    assert.deepEqual((await store2.load({ collection: 'notes', id: 'ack' }))?.pending, []);
  });

  it('several committed ops whose acks the outbox missed are recognised, even while sending is held', async () => {
    // The record lags behind the acks (acks are saved lazily): after a crash it still lists
    // ops the server committed. Their echoes, not resends, may reach the restarted client.
    const first = new GatedStore();
    const a = sdkClient(fixture.server.url, closers, { outbox: first });
    closers.push(async () => first.release());
    const doc = a.doc<Items>('notes', 'lagging', { create: { items: [] }, composeOps: false });
    await doc.ready;
    await doc.whenSynced();
    doc.submit(ops.insert(['items', 0], 'p1'));
    doc.submit(ops.insert(['items', 1], 'p2'));
    await doc.whenSaved();
    first.block(); // later saves (the acks) never complete: the crash comes first
    await waitFor(async () => ((await serverSnapshot(fixture.server, 'notes', 'lagging')).data as Items).items.length === 2, {
      what: 'both committed',
    });
    a.goOffline();
    const record = await first.inner.load({ collection: 'notes', id: 'lagging' });
    assert.equal(record?.pending.length, 2, 'the record still lists both');

    // Restart on that record; a new local edit holds sending (its save is slow) while the
    // subscription brings back both committed ops.
    const second = new GatedStore();
    closers.push(async () => second.release());
    await second.inner.save(record!);
    const b = sdkClient(fixture.server.url, closers, { outbox: second, startOffline: true });
    const restored = b.doc<Items>('notes', 'lagging');
    await restored.ready;
    assert.deepEqual(restored.data, { items: ['p1', 'p2'] });
    second.block();
    restored.submit(ops.insert(['items', 2], 'p3'));
    b.goOnline();
    const committed = (await serverSnapshot(fixture.server, 'notes', 'lagging')).v;
    await waitFor(() => restored.version === committed, { what: 'echoes received' });
    second.release();
    await restored.whenSynced();

    const after = await serverSnapshot(fixture.server, 'notes', 'lagging');
    assert.deepEqual(after.data, { items: ['p1', 'p2', 'p3'] });
    assert.deepEqual(restored.data, after.data);
    assert.equal(restored.version, after.v);
  });
});
