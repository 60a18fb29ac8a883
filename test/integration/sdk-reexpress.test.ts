/**
 * A client offline for longer than the server keeps its op log (OPLOG_RETENTION) is not
 * stranded: the SDK re-expresses its pending edits against the current document
 * (client/reexpress.ts), text as text edits that merge with what others typed, and reports
 * through 'rejected' what cannot apply any more. Also the pure diff and transform, seeded.
 */
import assert from 'node:assert/strict';
import * as json1 from 'ot-json1';
import type { Doc as JsonValue, JSONOp } from 'ot-json1';
import { MemoryOutboxStore, ops, type OpRejection, TandemErrorCode } from '../../client/index.js';
import { diffOp, reexpressQueue } from '../../client/reexpress.js';
import { tandemJson1 } from '../../ot-types/index.js';
import { Rng } from '../fuzz/rng.js';
import { subscribe, whenNothingPending } from '../helpers/clients.js';
import { sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { useServerPerTest } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

interface Note {
  text: string;
  log: string[];
  count: number;
  notes: Record<string, string>;
}

describe('sdk: pending edits older than the server keeps are re-expressed, not stranded', function () {
  this.timeout(60_000);
  const fixture = useServerPerTest({
    MILESTONE_INTERVAL: '10',
    OPLOG_RETENTION: 'versions=5',
    OPLOG_COMPACT_INTERVAL_MS: '3600000',
  });

  for (const composeOps of [false, true]) {
    it(`merges offline typing with others' after their history was compacted (composeOps: ${composeOps})`, async () => {
      const store = new MemoryOutboxStore();
      const a = sdkClient(fixture.server.url, fixture.closers, { outbox: store });
      const id = `offline-${composeOps}`;
      const docA = a.doc<Note>('notes', id, {
        create: { text: 'hello world', log: ['x', 'y'], count: 0, notes: { keep: 'k', drop: 'd' } },
        composeOps,
      });
      await docA.ready;
      await docA.whenSynced();
      const offlineAt = docA.version!;
      const rejected: OpRejection[] = [];
      docA.on('rejected', (r) => rejected.push(r));
      const stalled: unknown[] = [];
      docA.on('stalled', (e) => stalled.push(e));

      a.goOffline();
      docA.submit(ops.textInsert(['text'], 6, 'BRAVE '));
      docA.submit(ops.insert(['log', 2], 'a1'));
      docA.submit(ops.add(['count'], 2));
      docA.submit(ops.textInsert(['notes', 'drop'], 1, '!'));

      // Someone else, meanwhile: 40 commits, then the history behind them is compacted away.
      const connection = fixture.server.backend.connect();
      const b = connection.get('notes', id);
      await subscribe(b);
      b.preventCompose = true;
      b.submitOp(ops.textInsert(['text'], 0, 'Hi, '));
      b.submitOp(ops.insert(['log', 0], 'b0'));
      b.submitOp(['notes', 'drop', { r: true }]);
      for (let i = 0; i < 37; i++) b.submitOp(ops.add(['count'], 1));
      await whenNothingPending(b);
      // Milestones are saved when the server's turn ends.
      await new Promise((resolve) => setImmediate(resolve));
      const removed = await fixture.server.compactor!.runOnce();
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(removed >= offlineAt, `ops from the offline version on were compacted (${removed})`);

      a.goOnline();
      const final = await waitFor(
        async () => {
          const server = await serverSnapshot(fixture.server, 'notes', id);
          return docA.pendingCount === 0 && docA.version === server.v && (server.data as Note).count === 39 ? server : null;
        },
        { timeoutMs: 20_000, what: 'the re-expressed edits committed' },
      );
      connection.close();
      const data = final!.data as Note;
      assert.deepEqual(docA.data, data);
      assert.equal(data.text, 'Hi, hello BRAVE world', 'text typed offline where it was typed, beside theirs');
      assert.deepEqual(data.log, ['b0', 'x', 'y', 'a1']);
      assert.equal(data.count, 37 + 2, 'counter adds from both');
      assert.deepEqual(data.notes, { keep: 'k' });
      assert.deepEqual(stalled, [], 'never stalled');
      assert.equal(rejected.length, 1, JSON.stringify(rejected.map((r) => r.message)));
      assert.equal(rejected[0]!.code, TandemErrorCode.OP_DISCARDED);
      assert.match(rejected[0]!.message, composeOps ? /part of it/ : /removed or replaced meanwhile/);
      // The outbox followed: nothing pending at the final version.
      await docA.whenSaved();
      const record = await store.load({ collection: 'notes', id });
      assert.deepEqual([record?.version, record?.pending], [final!.v, []]);
    });
  }

  it('after a restart: edits restored from the outbox are re-expressed too', async () => {
    const store = new MemoryOutboxStore();
    const first = sdkClient(fixture.server.url, fixture.closers, { outbox: store });
    const before = first.doc<Note>('notes', 'restart', { create: { text: 'abc', log: [], count: 0, notes: {} } });
    await before.ready;
    await before.whenSynced();
    first.goOffline();
    before.submit(ops.textInsert(['text'], 3, 'D'));
    before.submit(ops.insert(['log', 0], 'offline'));
    await before.whenSaved();
    await first.close();

    const connection = fixture.server.backend.connect();
    const b = connection.get('notes', 'restart');
    await subscribe(b);
    b.preventCompose = true;
    b.submitOp(ops.textInsert(['text'], 0, '>'));
    for (let i = 0; i < 20; i++) b.submitOp(ops.add(['count'], 1));
    await whenNothingPending(b);
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok((await fixture.server.compactor!.runOnce()) > 0);
    await new Promise((resolve) => setImmediate(resolve));
    connection.close();

    const second = sdkClient(fixture.server.url, fixture.closers, { outbox: store });
    const after = second.doc<Note>('notes', 'restart');
    await after.ready;
    const final = await waitFor(
      async () => {
        const server = await serverSnapshot(fixture.server, 'notes', 'restart');
        return after.pendingCount === 0 && after.version === server.v && (server.data as Note).log.length === 1 ? server : null;
      },
      { timeoutMs: 20_000, what: 'the restored edits committed' },
    );
    assert.deepEqual(final!.data, { text: '>abcD', log: ['offline'], count: 20, notes: {} });
    assert.deepEqual(after.data, final!.data);
  });
});

describe('sdk: re-expression, pure (diffOp and reexpressQueue)', () => {
  it('diffOp(a, b) applied to a gives b, for seeded random documents', () => {
    const rng = new Rng(11);
    const word = () => Array.from({ length: rng.int(6) }, () => rng.pick(['a', 'b', ' ', 'é', '😀', 'z'])).join('');
    const value = (depth: number): JsonValue =>
      depth > 2 || rng.int(3) === 0
        ? rng.pick<JsonValue>([word(), rng.int(100), true, null])
        : rng.int(2) === 0
          ? Array.from({ length: rng.int(4) }, () => value(depth + 1))
          : Object.fromEntries(Array.from({ length: rng.int(4) }, () => [rng.pick(['p', 'q', 'r', 's']), value(depth + 1)]));
    for (let i = 0; i < 500; i++) {
      const from = value(0);
      const to = value(0);
      assert.deepEqual(json1.type.apply(structuredClone(from), diffOp(from, to)), to, `${JSON.stringify(from)} → ${JSON.stringify(to)}`);
    }
  });

  it('a text edit lands at its place after others edited the same string; an edit inside removed data is dropped', () => {
    const base = { t: 'one two three', gone: { u: 'x' } };
    const current = { t: 'zero one two three!' };
    const queue: JSONOp[] = [json1.editOp(['t'], 'text-unicode', [8, 'and ']), json1.editOp(['gone', 'u'], 'text-unicode', ['y'])];
    const [text, gone] = reexpressQueue(tandemJson1, base, current, queue);
    assert.deepEqual(json1.type.apply(structuredClone(current), text!.op), { t: 'zero one two and three!' });
    assert.deepEqual(gone, { op: null, partial: false });
  });
});
