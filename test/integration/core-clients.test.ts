import assert from 'node:assert/strict';
import { ops } from '../../ot-types/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { create, fetchDoc, socketClient, stockClient, submit, subscribe, waitForVersion, whenNothingPending } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';

/** The server's own view of a document, fetched through a server-side connection. */
async function serverSnapshot(server: TestServer, collection: string, id: string): Promise<{ v: number; data: unknown }> {
  const doc = server.backend.connect().get(collection, id);
  await fetchDoc(doc);
  const snapshot = { v: doc.version ?? -1, data: structuredClone(doc.data) };
  doc.connection.close();
  return snapshot;
}

describe('core: socket.io and stock ShareDB clients on one json1 document', function () {
  let server: TestServer;
  const closers: Array<() => void> = [];

  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await server.close();
  });

  function track<T extends { close(): void }>(client: T): T {
    closers.push(() => client.close());
    return client;
  }

  it('two socket.io clients and one stock /sharedb client converge on concurrent text and structural edits', async () => {
    const a = track(socketClient(server.url));
    const b = track(socketClient(server.url));
    const s = track(stockClient(server.url));
    const docA = a.connection.get('notes', 'n1');
    const docB = b.connection.get('notes', 'n1');
    const docS = s.connection.get('notes', 'n1');
    await subscribe(docA);
    await create(docA, { title: 'hello', items: [1, 2, 3], meta: {} });
    await Promise.all([subscribe(docB), subscribe(docS)]);

    // Concurrent: every client submits before seeing the others' ops.
    const rounds = 20;
    for (let i = 0; i < rounds; i++) {
      docA.submitOp(ops.textInsert(['title'], 0, 'a'));
      docB.submitOp(ops.textInsert(['title'], 5, 'b'));
      docS.submitOp(ops.insert(['items', 0], i));
      if (i % 5 === 0) docB.submitOp(ops.move(['items', 0], ['items', 2]));
      if (i % 7 === 0) docS.submitOp(ops.textDelete(['title'], 0, 1));
      // Both of these set the same new key: a conflict json1 resolves instead of throwing.
      if (i % 4 === 0) {
        docA.submitOp(ops.insert(['meta', `k${i}`], 'A'));
        docB.submitOp(ops.insert(['meta', `k${i}`], 'B'));
      }
    }
    await Promise.all([docA, docB, docS].map(whenNothingPending));
    const expected = await serverSnapshot(server, 'notes', 'n1');
    await waitForVersion([docA, docB, docS], expected.v);
    for (const doc of [docA, docB, docS]) assert.deepEqual(doc.data, expected.data);
    const title = (expected.data as { title: string }).title;
    assert.equal(title.split('a').length - 1, rounds);
    assert.equal((expected.data as { items: number[] }).items.length, 3 + rounds);
  });

  it('works over socket.io long-polling only', async () => {
    const a = track(socketClient(server.url, { transports: ['polling'] }));
    const b = track(socketClient(server.url, { transports: ['polling'] }));
    const docA = a.connection.get('notes', 'poll');
    const docB = b.connection.get('notes', 'poll');
    await subscribe(docA);
    await create(docA, { text: '' });
    await subscribe(docB);
    assert.equal(a.shim.transport, 'polling');
    for (let i = 0; i < 10; i++) {
      await submit(docA, ops.textInsert(['text'], 0, 'x'));
      await submit(docB, ops.textInsert(['text'], 0, 'y'));
    }
    await waitForVersion([docA, docB], 21);
    assert.deepEqual(docA.data, docB.data);
    assert.equal((docA.data as { text: string }).text.length, 20);
    assert.equal(a.shim.transport, 'polling');
  });

  it('a client cut off mid-edit keeps editing offline and each op is committed exactly once', async () => {
    const a = track(socketClient(server.url));
    const watcher = track(socketClient(server.url));
    const docA = a.connection.get('notes', 'offline');
    const docW = watcher.connection.get('notes', 'offline');
    await subscribe(docA);
    await create(docA, { list: [] });
    await subscribe(docW);

    const total = 60;
    // Goes offline right after the next op frame leaves: the server gets the op, the
    // client never sees its ack, and must resend it on reconnect (de-duplicated by src/seq).
    const cutAfterNextOpSend = () =>
      new Promise<void>((resolve) => {
        const onSend = (message: { a?: string }) => {
          if (message.a !== 'op') return;
          a.connection.off('send', onSend);
          queueMicrotask(() => {
            a.shim.goOffline();
            resolve();
          });
        };
        a.connection.on('send', onSend);
      });
    let resentDuplicates = 0;
    server.backend.on('submitRequestEnd', (err: { code?: string } | null) => {
      if (err?.code === 'ERR_OP_ALREADY_SUBMITTED') resentDuplicates++;
    });
    let cut = cutAfterNextOpSend();
    for (let i = 0; i < total; i++) {
      docA.submitOp(ops.insert(['list', i], i));
      if (i === 30) {
        await cut;
        a.shim.goOnline();
        cut = cutAfterNextOpSend();
      }
      // Let sends and acks interleave with the edits.
      if (i % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await cut;
    a.shim.goOnline();
    await whenNothingPending(docA);
    // ShareDB composes ops queued while offline into one, so versions count sends, not
    // edits: exactly-once shows in the content — every insert present once, in order.
    const expected = await serverSnapshot(server, 'notes', 'offline');
    assert.deepEqual(
      (expected.data as { list: number[] }).list,
      Array.from({ length: total }, (_, i) => i),
    );
    assert.deepEqual(docA.data, expected.data);
    await waitForVersion([docA, docW], expected.v);
    // Both cuts lost an ack for an op the server had: each resend was recognised, not re-applied.
    assert.equal(resentDuplicates, 2);
    assert.deepEqual(docW.data, expected.data);
  });

  it('reconnects by itself after the server drops the transport', async () => {
    const a = track(socketClient(server.url));
    const docA = a.connection.get('notes', 'drop');
    await subscribe(docA);
    await create(docA, { n: 0 });
    server.io.disconnectSockets(true);
    docA.submitOp(ops.add(['n'], 5));
    await whenNothingPending(docA);
    await waitFor(() => a.connection.state === 'connected', { what: 'reconnected' });
    assert.deepEqual((await serverSnapshot(server, 'notes', 'drop')).data, { n: 5 });
  });
});
