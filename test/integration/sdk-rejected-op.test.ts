import assert from 'node:assert/strict';
import { MemoryOutboxStore, TandemError, TandemErrorCode, ops, type JsonValue, type OpMeta, type OpRejection } from '../../client/index.js';
import { sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { useServerPerTest } from '../helpers/server.js';

interface Board {
  title: string;
  items: string[];
  locked: { note: string; list: number[] };
}

describe('sdk: an op the server rejects', function () {
  // A small op limit so a "too large" op is easy to make.
  const fixture = useServerPerTest({ MAX_OP_BYTES: '1024' });
  const { closers } = fixture;

  beforeEach(() => {
    // An access rule: nobody may change `locked`.
    fixture.server.backend.use('submit', (context, next) => {
      const op = (context.op as { op?: unknown }).op;
      if (context.id === 'rejects' && JSON.stringify(op ?? null).includes('"locked"')) {
        next(new TandemError(TandemErrorCode.FORBIDDEN, '`locked` is read-only'));
        return;
      }
      next();
    });
  });

  it('is rolled back locally and reported with its code; the other pending ops are committed', async () => {
    const store = new MemoryOutboxStore();
    const a = sdkClient(fixture.server.url, closers, { outbox: store });
    const initial: Board = { title: 'board', items: [], locked: { note: 'keep me', list: [1, 2, 3] } };
    // One server op per submit: composed ops would share the rejected op's fate.
    const doc = a.doc<Board>('notes', 'rejects', { create: initial, composeOps: false });
    await doc.ready;
    await doc.whenSynced();
    const rejections: OpRejection[] = [];
    const rollbacks: OpMeta['source'][] = [];
    doc.on('rejected', (r) => rejections.push(r));
    doc.on('op', (_op, meta) => rollbacks.push(meta.source));

    // Queue them offline so all five are pending at once, then let them go.
    a.goOffline();
    doc.submit(ops.insert(['items', 0], 'first'));
    // Over MAX_OP_BYTES but under the frame limit (4×), so the server answers it with a code.
    const tooLarge = ops.textInsert(['title'], 5, 'x'.repeat(2000));
    doc.submit(tooLarge);
    doc.submit(ops.insert(['items', 1], 'second'));
    // A removal: json1 can only roll it back with the removed value, which it does not carry.
    const forbidden = ops.remove(['locked']);
    doc.submit(forbidden);
    doc.submit(ops.insert(['items', 2], 'third'));
    assert.equal(doc.pendingCount, 5);
    assert.equal(doc.data?.locked, undefined);
    a.goOnline();
    await doc.whenSynced();

    assert.deepEqual(
      rejections.map((r) => [r.code, r.op]),
      [
        [TandemErrorCode.OP_TOO_LARGE, tooLarge],
        [TandemErrorCode.FORBIDDEN, forbidden],
      ],
    );
    for (const r of rejections) assert.ok(r.error instanceof TandemError && r.message.length > 0);
    assert.equal(rollbacks.filter((s) => s === 'rollback').length, 2);

    const expected: Board = { title: 'board', items: ['first', 'second', 'third'], locked: initial.locked };
    assert.deepEqual(doc.data, expected, 'rolled back locally, the removed subtree restored');
    const onServer = await serverSnapshot(fixture.server, 'notes', 'rejects');
    assert.deepEqual(onServer.data, expected);
    assert.equal(onServer.v, 1 + 3, 'only the three accepted ops were committed');
    assert.equal(doc.version, onServer.v);
    assert.equal(doc.pendingCount, 0, 'not retried');
    await doc.whenSaved();
    assert.deepEqual((await store.load({ collection: 'notes', id: 'rejects' }))?.pending, []);
  });

  it('is reported through "error" when nobody listens for "rejected"', async () => {
    const a = sdkClient(fixture.server.url, closers);
    const doc = a.doc<Board>('notes', 'rejects', { create: { title: '', items: [], locked: { note: '', list: [] } } });
    await doc.ready;
    const errors: TandemError[] = [];
    doc.on('error', (err) => errors.push(err));
    doc.submit(ops.replace(['locked', 'note'], 'changed'));
    await doc.whenSynced();
    assert.deepEqual(
      errors.map((e) => e.code),
      [TandemErrorCode.FORBIDDEN],
    );
    assert.equal(doc.data?.locked.note, '');
  });

  it('an op too large for the transport frame is rejected too, not left waiting for an ack', async () => {
    const a = sdkClient(fixture.server.url, closers);
    const doc = a.doc<Board>('notes', 'huge', { create: { title: '', items: [], locked: { note: '', list: [] } }, composeOps: false });
    await doc.ready;
    await doc.whenSynced();
    const rejections: OpRejection[] = [];
    doc.on('rejected', (r) => rejections.push(r));
    // Past the frame limit (4 × MAX_OP_BYTES): the server refuses the frame unparsed.
    doc.submit(ops.textInsert(['title'], 0, 'y'.repeat(6000)));
    doc.submit(ops.insert(['items', 0], 'after'));
    await doc.whenSynced();
    assert.deepEqual(
      rejections.map((r) => r.code),
      [TandemErrorCode.FRAME_TOO_LARGE],
    );
    const onServer = await serverSnapshot(fixture.server, 'notes', 'huge');
    assert.deepEqual(onServer.data, { title: '', items: ['after'], locked: { note: '', list: [] } });
    assert.deepEqual(doc.data, onServer.data);
  });

  it('an op nested too deep for the transport is rejected too', async () => {
    const a = sdkClient(fixture.server.url, closers);
    const doc = a.doc<Board>('notes', 'deep', { create: { title: '', items: [], locked: { note: '', list: [] } }, composeOps: false });
    await doc.ready;
    await doc.whenSynced();
    const rejections: OpRejection[] = [];
    doc.on('rejected', (r) => rejections.push(r));
    let deep: JsonValue = 'bottom';
    for (let i = 0; i < 1000; i++) deep = [deep];
    // The server refuses the frame before parsing it (deeper than its stack guard,
    // 2 × MAX_OP_DEPTH + envelope); an op only slightly too deep gets TANDEM_OP_TOO_DEEP.
    doc.submit(ops.insert(['items', 0], deep));
    doc.submit(ops.insert(['items', 0], 'shallow'));
    await doc.whenSynced();
    assert.deepEqual(
      rejections.map((r) => r.code),
      [TandemErrorCode.BAD_FRAME],
    );
    assert.deepEqual(doc.data?.items, ['shallow']);
    assert.deepEqual((await serverSnapshot(fixture.server, 'notes', 'deep')).data, doc.data);
  });
});
