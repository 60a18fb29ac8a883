import assert from 'node:assert/strict';
import { ops, type TandemError } from '../../client/index.js';
import { sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { GatedStore } from '../helpers/sdk-fakes.js';
import { useServerPerTest } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

describe('outbox: write-ahead', () => {
  const fixture = useServerPerTest();
  const { closers } = fixture;
  let opsReceived: Array<{ src?: string; seq?: number }>;
  let subscribesReceived: number;

  beforeEach(() => {
    opsReceived = [];
    subscribesReceived = 0;
    fixture.server.backend.use('receive', (context, next) => {
      const message = context.data as { a?: string; src?: string; seq?: number };
      if (message.a === 'op') opsReceived.push({ src: message.src, seq: message.seq });
      if (message.a === 's' || message.a === 'bs') subscribesReceived++;
      next();
    });
  });

  it('sends an op only after the save holding its src and seq has completed', async () => {
    const store = new GatedStore();
    const a = sdkClient(fixture.server.url, closers, { outbox: store });
    const doc = a.doc<{ items: number[] }>('notes', 'wal', { create: { items: [] } });
    await doc.ready;
    await doc.whenSynced();
    const createOps = opsReceived.length;

    store.block();
    const savesBefore = store.saves.length;
    doc.submit(ops.insert(['items', 0], 7));
    await waitFor(() => store.saves.length > savesBefore, { what: 'save started' });
    const saving = store.saves[store.saves.length - 1]!;
    assert.deepEqual(
      saving.pending.map((p) => p.src),
      [a.id],
    );
    const seq = saving.pending[0]!.seq;

    // A later message on the same socket reaches the server; the op, held back, did not.
    const subscribes = subscribesReceived;
    const other = a.doc('notes', 'other');
    await waitFor(() => subscribesReceived > subscribes, { what: 'a later message arrived' });
    assert.equal(opsReceived.length, createOps, 'op not sent while its save is pending');

    store.release();
    await doc.whenSynced();
    assert.deepEqual(opsReceived.slice(createOps), [{ src: a.id, seq }], 'sent once, with the saved identity');
    assert.deepEqual((await serverSnapshot(fixture.server, 'notes', 'wal')).data, { items: [7] });
    await other.ready;
  });

  it('reports a failed save and still syncs (degraded, not blocked)', async () => {
    const store = new GatedStore();
    const a = sdkClient(fixture.server.url, closers, { outbox: store });
    const doc = a.doc<{ items: number[] }>('notes', 'wal-fail', { create: { items: [] } });
    await doc.ready;
    await doc.whenSynced();
    const errors: TandemError[] = [];
    doc.on('error', (err) => errors.push(err));
    store.failNext();
    doc.submit(ops.insert(['items', 0], 1));
    await doc.whenSynced();
    assert.deepEqual(
      errors.map((e) => e.code),
      ['TANDEM_OUTBOX_FAILED'],
    );
    assert.deepEqual((await serverSnapshot(fixture.server, 'notes', 'wal-fail')).data, { items: [1] });
    // The next save succeeds and holds the acknowledged state.
    await waitFor(async () => (await store.load({ collection: 'notes', id: 'wal-fail' }))?.version === doc.version, {
      what: 'record caught up',
    });
  });
});
