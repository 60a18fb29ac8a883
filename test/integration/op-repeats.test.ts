/**
 * A connection is sent each op of a document once (server/transport/sent-ops.ts), and a
 * client that says its document is older again gets the ops it needs again. Stock ShareDB
 * clients over /sharedb, which see every message the server sends.
 */
import assert from 'node:assert/strict';
import type { Connection, Doc, Snapshot } from 'sharedb/lib/client/index.js';
import { ops } from '../../ot-types/index.js';
import { fetchSnapshot } from '../helpers/access-fixtures.js';
import { create, fetchDoc, stockClient, submit, subscribe, waitForVersion, whenNothingPending } from '../helpers/clients.js';
import { useServerPerTest } from '../helpers/server.js';
import { captureShareDbLogs } from './bad-input-wire.js';

interface WireMessage {
  a?: string;
  c?: string;
  d?: string;
  v?: number;
  op?: unknown;
  error?: unknown;
}

/** The op messages (not acks) a connection receives for one document, in order of arrival. */
function recordOps(connection: Connection, id: string): number[] {
  const versions: number[] = [];
  connection.on('receive', (request: { data: WireMessage }) => {
    const m = request.data;
    if (m.a === 'op' && m.d === id && !m.error && 'op' in m && typeof m.v === 'number') versions.push(m.v);
  });
  return versions;
}

const destroy = (doc: Doc) => new Promise<void>((resolve) => doc.destroy(() => resolve()));

const ingest = (doc: Doc, snapshot: Snapshot) =>
  new Promise<void>((resolve, reject) => doc.ingestSnapshot(snapshot, (err) => (err ? reject(err) : resolve())));

/** Versions that occur more than once. */
function repeats(versions: readonly number[]): number[] {
  const seen = new Set<number>();
  return versions.filter((v) => seen.has(v) || !seen.add(v));
}

describe('op messages: each op once per connection, again when the client asks for it', function () {
  this.timeout(30_000);
  const ctx = useServerPerTest();

  function stock(): ReturnType<typeof stockClient> {
    const client = stockClient(ctx.server.url);
    ctx.closers.push(async () => client.close());
    return client;
  }

  /** A writer's created, subscribed document, and another client's connection. */
  async function writerAndReader(id: string): Promise<{ w: Doc; reader: Connection }> {
    const w = stock().connection.get('notes', id);
    await subscribe(w);
    await create(w, { text: '' });
    return { w, reader: stock().connection };
  }

  it('concurrent writers on one document are not sent the ops their ops were transformed against twice', async () => {
    const clients = [stock(), stock(), stock(), stock()];
    const docs = clients.map((c) => c.connection.get('notes', 'busy'));
    const received = clients.map((c) => recordOps(c.connection, 'busy'));
    // What each submit was transformed against: ShareDB's submit reply carries those ops,
    // which the subscription delivers too.
    let transformedAgainst = 0;
    for (const c of clients) {
      const submitted = new Map<number, number>();
      c.connection.on('send', (m: WireMessage & { seq?: number }) => {
        if (m.a === 'op' && typeof m.v === 'number' && typeof m.seq === 'number') submitted.set(m.seq, m.v);
      });
      c.connection.on('receive', (request: { data: WireMessage & { seq?: number; src?: string } }) => {
        const m = request.data;
        if (m.a !== 'op' || 'op' in m || m.error || m.src !== c.connection.id || m.seq === undefined) return;
        transformedAgainst += (m.v ?? 0) - (submitted.get(m.seq) ?? m.v ?? 0);
      });
    }
    await subscribe(docs[0]);
    await create(docs[0], { text: '', n: 0 });
    await Promise.all(docs.slice(1).map(subscribe));

    const rounds = 25;
    for (let i = 0; i < rounds; i++) {
      docs.forEach((doc, k) => {
        doc.submitOp(ops.textInsert(['text'], 0, String(k)));
        if (i % 5 === k) doc.submitOp(ops.add(['n'], 1));
      });
      // Every writer waits for its ack before the next round: ops meet concurrent ones.
      await Promise.all(docs.map(whenNothingPending));
    }
    const final = docs[0].version ?? -1;
    await waitForVersion(docs, final);
    for (const doc of docs) assert.deepEqual(doc.data, docs[0].data);
    assert.equal((docs[0].data as { text: string }).text.length, rounds * docs.length);

    assert.ok(transformedAgainst > 0, 'the writers submitted concurrently (else nothing would repeat)');
    received.forEach((versions, k) => assert.deepEqual(repeats(versions), [], `client ${k} was sent these versions twice`));
    // Every client has every other client's op: sent once, not skipped altogether.
    const ownCounts = docs.map((_, k) => final - 1 - received[k].length);
    for (const own of ownCounts) assert.ok(own > 0 && own <= rounds * 2, `own ops not received: ${own}`);
  });

  it('a document recreated from an older snapshot and fetched gets the ops it was already sent', async () => {
    const { w, reader } = await writerAndReader('again');
    for (let i = 0; i < 3; i++) await submit(w, ops.textInsert(['text'], 0, 'a'));
    const old = await fetchSnapshot(reader, 'notes', 'again', 2);

    // Fetched, not subscribed: its ops come only as the reply to its own submit.
    const first = reader.get('notes', 'again');
    await fetchDoc(first);
    const base = first.version ?? -1;
    for (let i = 0; i < 3; i++) await submit(w, ops.textInsert(['text'], 0, 'b'));
    const received = recordOps(reader, 'again');
    await submit(first, ops.textInsert(['text'], 0, 'r'));
    assert.deepEqual(received, [base, base + 1, base + 2], 'the submit reply carried the writer ops');
    await destroy(first);

    // The same connection, a new document object at version 2: a fetch asks for the ops
    // after it, including those this connection was sent above.
    const second: Doc = reader.get('notes', 'again');
    assert.notEqual(second, first);
    await ingest(second, old);
    assert.equal(second.version, 2);
    await fetchDoc(second);
    assert.equal(second.version, w.version);
    assert.deepEqual(second.data, w.data);
  });

  it('a resubscribe after an unsubscribe gets the ops it was already sent', async () => {
    const { w, reader } = await writerAndReader('resub');
    const r = reader.get('notes', 'resub');
    await subscribe(r);
    for (let i = 0; i < 4; i++) await submit(w, ops.textInsert(['text'], 0, 'a'));
    await waitForVersion([r], w.version ?? -1);
    const old = await fetchSnapshot(reader, 'notes', 'resub', 1);
    await destroy(r);

    const again = reader.get('notes', 'resub');
    await ingest(again, old);
    await subscribe(again);
    assert.equal(again.version, w.version, 'the subscribe from version 1 brought every op after it');
    assert.deepEqual(again.data, w.data);
  });

  it('a document recreated at an older version that submits without asking first still converges', async () => {
    // ShareDB's client then sees an ack at a version it does not have and fetches: the
    // fetch names the document, so the server sends what it skipped. No op is lost.
    const logs = captureShareDbLogs();
    try {
      const { w, reader } = await writerAndReader('blind');
      const r = reader.get('notes', 'blind');
      await fetchDoc(r);
      const old = await fetchSnapshot(reader, 'notes', 'blind', r.version ?? -1);
      for (let i = 0; i < 3; i++) await submit(w, ops.textInsert(['text'], 0, 'a'));
      await submit(r, ops.textInsert(['text'], 0, 'r'));
      await destroy(r);

      const again = reader.get('notes', 'blind');
      await ingest(again, old);
      await submit(again, ops.textInsert(['text'], 0, 'x'));
      const server = stock().connection.get('notes', 'blind');
      await fetchDoc(server);
      assert.equal((server.data as { text: string }).text.split('').sort().join(''), 'aaarx');
      await waitForVersion([again], server.version ?? -1);
      assert.deepEqual(again.data, server.data);
    } finally {
      logs.restore();
    }
  });
});
