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
import { errorCode, RawShareDb } from '../resilience/connection-wire.js';

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

interface Board {
  text: string;
  items: string[];
  cards: Record<string, { title: string }>;
  count: number;
}

describe('OPLOG_RETENTION=versions=500 under load: a client offline since version 100 comes back', function () {
  this.timeout(120_000);
  const fixture = useServerPerTest({ OPLOG_RETENTION: 'versions=500', OPLOG_COMPACT_INTERVAL_MS: '100', OPS_PER_MINUTE: '10000000' });

  it('its 50 edits (text and structure) that still have a target land exactly once, the rest are reported, and every client converges', async () => {
    const a = sdkClient(fixture.server.url, fixture.closers, { outbox: new MemoryOutboxStore() });
    const docA = a.doc<Board>('notes', 'board', {
      create: { text: 'base text here', items: [], cards: { c1: { title: 'one' }, c2: { title: 'two' } }, count: 0 },
      composeOps: false,
    });
    await docA.ready;
    await docA.whenSynced();
    const connection = fixture.server.backend.connect();
    fixture.closers.push(async () => connection.close());
    const b = connection.get('notes', 'board');
    await subscribe(b);
    b.preventCompose = true;
    const commit = async (count: number, opAt: (i: number) => JSONOp) => {
      for (let i = 0; i < count; i++) {
        b.submitOp(opAt(i));
        // Let the server's turns end (group COMMIT, milestones) and compaction run.
        if (i % 100 === 99) {
          await whenNothingPending(b);
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      await whenNothingPending(b);
    };
    await commit(99, () => ops.add(['count'], 1));
    await waitFor(() => docA.version === 100, { what: 'A at version 100' });
    const c = sdkClient(fixture.server.url, fixture.closers);
    const docC = c.doc<Board>('notes', 'board');
    await docC.ready;

    a.goOffline();
    const mine = { text: [] as string[], items: [] as string[], title: [] as string[], cards: [] as string[], gone: [] as string[] };
    for (let i = 0; i < 50; i++) {
      const data = docA.data!;
      const token = `a${i}`;
      if (i % 5 === 0) {
        // After "base", before the tokens typed earlier (never inside one).
        docA.submit(ops.textInsert(['text'], 4, `[${token}]`));
        mine.text.push(`[${token}]`);
      } else if (i % 5 === 1) {
        docA.submit(ops.insert(['items', data.items.length], token));
        mine.items.push(token);
      } else if (i % 5 === 2) {
        docA.submit(ops.textInsert(['cards', 'c1', 'title'], Array.from(data.cards.c1!.title).length, `{${token}}`));
        mine.title.push(`{${token}}`);
      } else if (i % 5 === 3) {
        docA.submit(ops.textInsert(['cards', 'c2', 'title'], 0, `${token}·`));
        mine.gone.push(token);
      } else {
        docA.submit(ops.insert(['cards', token], { title: 'A' }));
        mine.cards.push(token);
      }
    }
    assert.equal(docA.pendingCount, 50);

    // 5,000 ops from others while A is away (C types a few too); compaction runs meanwhile.
    const cTyping = (async () => {
      for (let i = 0; i < 20; i++) {
        docC.submit(ops.insert(['items', 0], `c${i}`));
        await docC.whenSynced();
      }
    })();
    await commit(5000, (i) =>
      i === 2500
        ? ops.remove(['cards', 'c2'])
        : i % 50 === 0
          ? ops.textInsert(['text'], 0, 'b')
          : i % 100 === 1
            ? ops.insert(['items', 0], `b${i}`)
            : ops.add(['count'], 1),
    );
    await cTyping;
    await waitFor(() => fixture.server.compactor!.stats.removed >= 4000, {
      timeoutMs: 30_000,
      what: `compaction past A's base (${fixture.server.compactor!.stats.removed} removed)`,
    });
    const rejected: OpRejection[] = [];
    docA.on('rejected', (r) => rejected.push(r));

    a.goOnline();
    const final = (await waitFor(
      async () => {
        const server = await serverSnapshot(fixture.server, 'notes', 'board');
        return docA.pendingCount === 0 && docA.version === server.v && docC.version === server.v ? server : null;
      },
      { timeoutMs: 30_000, what: 'A and C at the server version with nothing pending' },
    ))!;
    const data = final.data as Board;
    assert.deepEqual(docA.data, data);
    assert.deepEqual(docC.data, data);
    const once = (haystack: string, needle: string) => haystack.split(needle).length - 1 === 1;
    for (const t of mine.text) assert.ok(once(data.text, t), `${t} once in the text: ${data.text}`);
    for (const t of mine.items) assert.equal(data.items.filter((x) => x === t).length, 1, `${t} once in the list`);
    for (const t of mine.title) assert.ok(once(data.cards.c1!.title, t), `${t} once in c1's title: ${data.cards.c1!.title}`);
    for (const t of mine.cards) assert.deepEqual(data.cards[t], { title: 'A' });
    assert.equal(data.cards.c2, undefined);
    assert.equal(data.items.filter((x) => x.startsWith('c')).length, 20, "C's items");
    assert.equal(rejected.length, mine.gone.length, 'each edit of the removed card reported');
    assert.ok(rejected.every((r) => r.code === TandemErrorCode.OP_DISCARDED));
    console.log(
      `      ${fixture.server.compactor!.stats.removed} ops compacted; A re-expressed 50 edits against v${final.v - 40}, ${rejected.length} reported`,
    );
  });
});

describe('compacted history: a resend of an op committed long ago is recognised, not applied twice', function () {
  this.timeout(60_000);
  const fixture = useServerPerTest({
    MILESTONE_INTERVAL: '10',
    OPLOG_RETENTION: 'versions=5',
    OPLOG_COMPACT_INTERVAL_MS: '3600000',
  });

  async function compactAfter(id: string, commits: number): Promise<void> {
    const connection = fixture.server.backend.connect();
    const b = connection.get('notes', id);
    await subscribe(b);
    b.preventCompose = true;
    for (let i = 0; i < commits; i++) b.submitOp(ops.add(['count'], 1));
    await whenNothingPending(b);
    connection.close();
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok((await fixture.server.compactor!.runOnce()) > 0, 'something was compacted');
    await new Promise((resolve) => setImmediate(resolve));
  }

  it('the SDK: an op whose ack was lost is taken as committed; only the edits after it are re-expressed', async () => {
    const a = sdkClient(fixture.server.url, fixture.closers, { outbox: new MemoryOutboxStore() });
    const doc = a.doc<Note>('notes', 'lost-ack', { create: { text: '', log: [], count: 0, notes: {} }, composeOps: false });
    await doc.ready;
    await doc.whenSynced();
    // The server commits the next op and the client drops off before the ack reaches it.
    let cut = true;
    fixture.server.backend.use('afterWrite', (context, next) => {
      if (cut && context.id === 'lost-ack') {
        cut = false;
        a.goOffline();
      }
      next();
    });
    doc.submit(ops.insert(['log', 0], 'once'));
    await waitFor(() => a.state === 'offline', { what: 'offline' });
    doc.submit(ops.textInsert(['text'], 0, 'after'));
    assert.equal(doc.pendingCount, 2, 'the committed op is still in flight for the client');
    await compactAfter('lost-ack', 30);
    const rejected: OpRejection[] = [];
    doc.on('rejected', (r) => rejected.push(r));

    a.goOnline();
    const final = await waitFor(
      async () => {
        const server = await serverSnapshot(fixture.server, 'notes', 'lost-ack');
        return doc.pendingCount === 0 && doc.version === server.v && (server.data as Note).text === 'after' ? server : null;
      },
      { timeoutMs: 20_000, what: 'the edit after it committed' },
    );
    assert.deepEqual((final!.data as Note).log, ['once'], 'applied exactly once');
    assert.equal((final!.data as Note).count, 30);
    assert.deepEqual(doc.data, final!.data);
    assert.deepEqual(rejected, []);
  });

  it('ShareDB wire: the resend gets TANDEM_ALREADY_COMMITTED; an op never committed still gets TANDEM_MISSING_OPS', async () => {
    const app = fixture.server.backend.connect();
    const doc = app.get('notes', 'wire');
    await new Promise<void>((resolve, reject) => doc.create({ count: 0 }, 'json1', (err) => (err ? reject(err) : resolve())));
    const raw = await RawShareDb.open(fixture.server.url);
    fixture.closers.push(() => raw.close());
    const src = raw.messages.find((m) => m.a === 'hs')!.id as string;
    const op = { a: 'op', c: 'notes', d: 'wire', v: 1, src, seq: 1, op: ['count', { ena: 5 }] };
    raw.send(op);
    await raw.next((m) => m.a === 'op' && m.seq === 1 && !m.error, 'the ack');
    await compactAfter('wire', 30);
    raw.send(op);
    const again = await raw.next((m) => m.a === 'op' && m.seq === 1 && m.error !== undefined, 'the answer to the resend');
    assert.equal(errorCode(again), TandemErrorCode.ALREADY_COMMITTED);
    raw.send({ ...op, seq: 2 });
    const fresh = await raw.next((m) => m.a === 'op' && m.seq === 2, 'the answer to a new op at the old version');
    assert.equal(errorCode(fresh), TandemErrorCode.MISSING_OPS);
    const server = await serverSnapshot(fixture.server, 'notes', 'wire');
    assert.deepEqual([server.v, server.data], [32, { count: 35 }], 'the op counted once');
    app.close();
  });

  it('HTTP API: an Idempotency-Key whose op was compacted away still applies once', async () => {
    const post = (body: unknown, key?: string) =>
      fetch(`${fixture.server.url}/api/v1/docs/notes/idem/ops`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
        body: JSON.stringify(body),
      }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> }));
    assert.equal((await post({ create: { data: { count: 0 } } })).status, 201);
    assert.deepEqual((await post({ op: ['count', { ena: 100 }] }, 'pay-7')).body.duplicate, false);
    await compactAfter('idem', 30);
    const retried = await post({ op: ['count', { ena: 100 }] }, 'pay-7');
    assert.deepEqual([retried.status, retried.body.duplicate], [200, true]);
    const server = await serverSnapshot(fixture.server, 'notes', 'idem');
    assert.deepEqual(server.data, { count: 130 });
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
