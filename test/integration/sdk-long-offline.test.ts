import assert from 'node:assert/strict';
import type { Doc } from 'sharedb/lib/client/index.js';
import { MemoryOutboxStore, ops, type TandemError } from '../../client/index.js';
import { subscribe, whenNothingPending } from '../helpers/clients.js';
import { counts, sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { useServerPerTest, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

interface Log {
  text: string;
  log: string[];
  count: number;
}

/** A stock ShareDB client inside the server process: one commit per op, no network. */
async function otherClient(server: TestServer, id: string): Promise<{ doc: Doc; close(): void }> {
  const connection = server.backend.connect();
  const doc = connection.get('notes', id);
  await subscribe(doc);
  // One server op per submit: the offline client must rebase over every one of them.
  doc.preventCompose = true;
  return { doc, close: () => connection.close() };
}

/**
 * `count` ops from the other client: mostly counter increments (they keep the document
 * small, so the test measures rebasing, not JSON size), every 10th a text insert at the
 * front and every 10th a list insert at the front — both shift the offline client's edits.
 */
async function commitMany(doc: Doc, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    doc.submitOp(i % 10 === 0 ? ops.textInsert(['text'], 0, 'b') : i % 10 === 5 ? ops.insert(['log', 0], `b${i}`) : ops.add(['count'], 1));
    // Bounded queue: ShareDB sends one op at a time anyway.
    if (i % 500 === 499) await whenNothingPending(doc);
  }
  await whenNothingPending(doc);
}

describe('sdk: long offline', function () {
  this.timeout(60_000);
  const fixture = useServerPerTest();
  const { closers } = fixture;

  it('a client offline while another commits 5,000 ops rebases its edits and converges', async () => {
    const store = new MemoryOutboxStore();
    const a = sdkClient(fixture.server.url, closers, { outbox: store });
    const docA = a.doc<Log>('notes', 'long', { create: { text: 'seed', log: [], count: 0 } });
    await docA.ready;
    await docA.whenSynced();
    const b = await otherClient(fixture.server, 'long');
    closers.push(async () => b.close());

    a.goOffline();
    const mine: string[] = [];
    for (let i = 0; i < 20; i++) {
      const length = docA.data?.log.length ?? 0;
      docA.submit(ops.insert(['log', length], `a${i}`));
      docA.submit(ops.textInsert(['text'], docA.data?.text.length ?? 0, 'A'));
      mine.push(`a${i}`);
    }
    // Unsent offline edits compose into one op (ShareDB's default), rebased over all 5,000.
    assert.equal(docA.pendingCount, 1);

    const started = Date.now();
    await commitMany(b.doc, 5000);
    const remoteMs = Date.now() - started;
    assert.equal(b.doc.version, 1 + 5000);

    const rebaseStart = Date.now();
    a.goOnline();
    await docA.whenSynced();
    const final = await serverSnapshot(fixture.server, 'notes', 'long');
    await waitFor(() => docA.version === final.v && b.doc.version === final.v, { timeoutMs: 20_000, what: 'both at the final version' });
    console.log(`      (5,000 remote commits in ${remoteMs} ms; rebase and sync in ${Date.now() - rebaseStart} ms)`);

    assert.equal(final.v, 1 + 5000 + 1);
    assert.deepEqual(docA.data, final.data);
    assert.deepEqual(b.doc.data, final.data);
    const data = final.data as Log;
    const seen = counts(data.log);
    for (const item of mine) assert.equal(seen.get(item), 1, `${item} exactly once`);
    for (let i = 5; i < 5000; i += 10) assert.equal(seen.get(`b${i}`), 1);
    assert.equal(data.log.length, 20 + 500);
    assert.equal(data.count, 4000);
    assert.equal([...data.text].filter((c) => c === 'A').length, 20);
    assert.equal([...data.text].filter((c) => c === 'b').length, 500);
    assert.ok(data.text.startsWith('b') && data.text.endsWith('seed' + 'A'.repeat(20)));
    // A's own list items keep their relative order.
    assert.deepEqual(
      data.log.filter((x) => x.startsWith('a')),
      mine,
    );
    // The outbox followed: the latest snapshot, nothing pending.
    await docA.whenSaved();
    const record = await store.load({ collection: 'notes', id: 'long' });
    assert.equal(record?.version, final.v);
    assert.deepEqual(record?.snapshot, final.data);
    assert.deepEqual(record?.pending, []);
  });

  it("onMissingHistory: 'stall': when the server lacks the ops to rebase, the client keeps its pending ops and reports it", async () => {
    const store = new MemoryOutboxStore();
    const a = sdkClient(fixture.server.url, closers, { outbox: store });
    // This test is about the 'stall' choice; re-expressing is sdk-reexpress.test.ts.
    const docA = a.doc<Log>('notes', 'pruned', { create: { text: '', log: [], count: 0 }, onMissingHistory: 'stall' });
    await docA.ready;
    await docA.whenSynced();
    const offlineAt = docA.version!;
    const b = await otherClient(fixture.server, 'pruned');
    closers.push(async () => b.close());

    a.goOffline();
    for (let i = 0; i < 3; i++) docA.submit(ops.insert(['log', i], `a${i}`));
    await commitMany(b.doc, 10);

    // Simulate a pruned op log: ops below version `offlineAt + 5` are gone from the store.
    const db = fixture.server.backend.db as unknown as { getOps: (...args: unknown[]) => void };
    const getOps = db.getOps.bind(db);
    db.getOps = (collection, id, from, to, options, callback) => {
      if (id === 'pruned' && typeof from === 'number' && from < offlineAt + 5) {
        // A plain {code, message}, as a store reports it (an Error's stack would be logged).
        (callback as (e: unknown) => void)({ code: 'TANDEM_MISSING_OPS', message: `Missing ops from ${String(from)}` });
        return;
      }
      getOps(collection, id, from, to, options, callback);
    };
    closers.push(async () => {
      db.getOps = getOps;
    });

    let submits = 0;
    let subscribes = 0;
    fixture.server.backend.use('submit', (context, next) => {
      if (context.id === 'pruned' && (context.op as { src?: string }).src === a.id) submits++;
      next();
    });
    fixture.server.backend.use('receive', (context, next) => {
      const message = context.data as { a?: string; d?: string; c?: string; b?: unknown };
      if ((message.a === 's' && message.d === 'pruned') || message.a === 'bs') subscribes++;
      next();
    });
    const stalled: TandemError[] = [];
    docA.on('stalled', (err) => stalled.push(err));
    const local = structuredClone(docA.data);

    a.goOnline();
    await waitFor(() => stalled.length > 0, { what: 'stalled' });
    assert.equal(stalled[0]!.code, 'TANDEM_MISSING_OPS');
    assert.equal(docA.stalled?.code, 'TANDEM_MISSING_OPS');
    await assert.rejects(docA.whenSynced(), { code: 'TANDEM_MISSING_OPS' });
    // Kept: local data, pending ops and the outbox record are all still there.
    assert.deepEqual(docA.data, local);
    assert.equal(docA.pendingCount, 1);
    await docA.whenSaved();
    const record = await store.load({ collection: 'notes', id: 'pruned' });
    assert.equal(record?.pending.length, 1);
    assert.equal(record?.version, offlineAt);

    // Not retried forever: a reconnect resubscribes (and fails again) but does not resend.
    assert.equal(submits, 1);
    const subscribedBefore = subscribes;
    a.goOffline();
    a.goOnline();
    // Ops are sent before the resubscription on the same socket, so once the server has
    // the subscribe request it would have seen a resend.
    await waitFor(() => subscribes > subscribedBefore, { what: 'resubscribe' });
    assert.equal(submits, 1);
    assert.equal(stalled.length, 1, 'reported once');
    assert.equal(docA.pendingCount, 1);

    // The app may give them up explicitly: it gets the ops back and the server's snapshot.
    const dropped = await docA.discardPending();
    assert.equal(dropped.length, 1);
    const serverNow = await serverSnapshot(fixture.server, 'notes', 'pruned');
    await waitFor(() => docA.version === serverNow.v, { what: 'reloaded' });
    assert.deepEqual(docA.data, serverNow.data);
    assert.equal(docA.stalled, null);
  });
});
