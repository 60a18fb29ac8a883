import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Doc } from 'sharedb/lib/client/index.js';
import { ops, type DocHandle, type Json1Presence, type PresenceHandle, type TandemClient } from '../../client/index.js';
import { redisServerAvailable, startTestRedis, type TestRedis } from '../helpers/redis-server.js';
import { sdkClient } from '../helpers/sdk-clients.js';
import { startTestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import { waitFor } from '../helpers/wait.js';

interface Text {
  text: string;
}

interface Cursor extends Json1Presence {
  user: { name: string };
}

interface Peer {
  name: string;
  client: TandemClient;
  doc: DocHandle<Text>;
  presence: PresenceHandle<Cursor>;
}

const TEXT = 'The quick brown fox jumps over the lazy dog';

/** Where `peer` sees `name`'s cursor (its own, or a remote one), or null. */
function cursorOf(peer: Peer, name: string): number | null {
  if (name === peer.name) return peer.presence.value?.anchor ?? null;
  for (const value of peer.presence.remotes.values()) if (value.user.name === name) return value.anchor ?? null;
  return null;
}

async function joinDoc(url: string, name: string, closers: Array<() => Promise<void>>): Promise<Peer> {
  const client = sdkClient(url, closers);
  const doc = client.doc<Text>('notes', 'cursors', { create: { text: TEXT } });
  await doc.ready;
  const presence = doc.presence<Cursor>();
  return { name, client, doc, presence };
}

describe('sdk: presence on json1 text', function () {
  this.timeout(30_000);
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it('three cursors stay on their characters while the others type before them; a leaver disappears', async () => {
    const server = await startTestServer();
    closers.push(() => server.close());
    const peers = [
      await joinDoc(server.url, 'ann', closers),
      await joinDoc(server.url, 'bob', closers),
      await joinDoc(server.url, 'cid', closers),
    ];
    const [ann, bob, cid] = peers as [Peer, Peer, Peer];
    // Each cursor sits before one character: 'q', 'f', 'l'.
    const marks: Record<string, string> = { ann: 'q', bob: 'f', cid: 'l' };
    for (const peer of peers) {
      const offset = TEXT.indexOf(marks[peer.name]!);
      peer.presence.submit({ path: ['text'], anchor: offset, head: offset, user: { name: peer.name } });
    }
    await waitFor(() => peers.every((p) => p.presence.remotes.size === 2), { what: 'everyone sees two cursors' });

    // Concurrent typing, always strictly before someone else's cursor: cid at the start,
    // ann just before bob's cursor, bob just before cid's cursor.
    for (let round = 0; round < 10; round++) {
      cid.doc.submit(ops.textInsert(['text'], 0, 'C'));
      ann.doc.submit(ops.textInsert(['text'], cursorOf(ann, 'bob')! - 1, 'A'));
      bob.doc.submit(ops.textInsert(['text'], cursorOf(bob, 'cid')! - 1, 'B'));
    }
    await Promise.all(peers.map((p) => p.doc.whenSynced()));
    await waitFor(() => peers.every((p) => p.doc.version === ann.doc.version && p.doc.data?.text === ann.doc.data?.text), {
      what: 'converged text',
    });
    const text = ann.doc.data!.text;
    assert.equal(text.length, TEXT.length + 30);

    // Every peer sees every cursor (its own included) on the character it started on.
    await waitFor(() => peers.every((p) => peers.every((q) => text[cursorOf(p, q.name) ?? -1] === marks[q.name])), {
      what: 'cursors on their characters',
    });

    // A leaver's cursor goes away for the others within a few seconds.
    await cid.client.close();
    await waitFor(() => [ann, bob].every((p) => cursorOf(p, 'cid') === null), { timeoutMs: 3000, what: "cid's cursor removed" });
    assert.equal(ann.presence.remotes.size, 1);
  });

  it('a cursor follows the edit of its own author past the typed text', async () => {
    const server = await startTestServer();
    closers.push(() => server.close());
    const ann = await joinDoc(server.url, 'ann', closers);
    const bob = await joinDoc(server.url, 'bob', closers);
    ann.presence.submit({ path: ['text'], anchor: 4, head: 4, user: { name: 'ann' } });
    bob.presence.submit({ path: ['text'], anchor: 4, head: 4, user: { name: 'bob' } });
    await waitFor(() => cursorOf(bob, 'ann') === 4 && cursorOf(ann, 'bob') === 4, { what: 'cursors seen' });
    // Ann types at her cursor: her cursor moves past it, bob's (same spot) stays before it.
    ann.doc.submit(ops.textInsert(['text'], 4, 'very '));
    await ann.doc.whenSynced();
    await waitFor(() => bob.doc.version === ann.doc.version, { what: 'bob has the op' });
    assert.equal(cursorOf(ann, 'ann'), 9);
    await waitFor(() => cursorOf(bob, 'ann') === 9 && cursorOf(bob, 'bob') === 4 && cursorOf(ann, 'bob') === 4, {
      what: 'own/others bias',
    });
  });

  it('travels between two server instances through Redis pub/sub', async function () {
    requireService(this, redisServerAvailable(), 'redis-server not on PATH');
    const redis: TestRedis = await startTestRedis();
    closers.push(() => redis.destroy());
    const dir = mkdtempSync(join(tmpdir(), 'tandem-presence-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    const env = { DB_URL: `sqlite:${join(dir, 'shared.db')}`, REDIS_URL: redis.url };
    const one = await startTestServer(env);
    closers.push(() => one.close());
    const two = await startTestServer(env);
    closers.push(() => two.close());

    const ann = await joinDoc(one.url, 'ann', closers);
    const bob = await joinDoc(two.url, 'bob', closers);
    const offset = TEXT.indexOf('f');
    ann.presence.submit({ path: ['text'], anchor: offset, head: offset, user: { name: 'ann' } });
    await waitFor(() => cursorOf(bob, 'ann') === offset, { what: "bob sees ann's cursor across instances" });
    bob.doc.submit(ops.textInsert(['text'], 0, 'xyz'));
    await waitFor(() => cursorOf(bob, 'ann') === offset + 3 && cursorOf(ann, 'ann') === offset + 3, { what: 'moved by the op' });
    await ann.client.close();
    await waitFor(() => cursorOf(bob, 'ann') === null, { timeoutMs: 3000, what: "ann's cursor removed" });
  });

  it('no ghosts: offline a client shows nobody and keeps nobody while it types; back online it holds exactly the server view', async () => {
    const server = await startTestServer();
    closers.push(() => server.close());
    const ann = await joinDoc(server.url, 'ann', closers);
    const bob = await joinDoc(server.url, 'bob', closers);
    ann.presence.submit({ path: ['text'], anchor: 4, head: 4, user: { name: 'ann' } });
    await waitFor(() => cursorOf(bob, 'ann') === 4, { what: "bob sees ann's cursor" });

    // Bob goes offline and keeps typing before ann's cursor; ann leaves meanwhile.
    const seenOffline: Array<string | null> = [];
    bob.presence.on('change', (_id, value) => seenOffline.push(value ? value.user.name : null));
    bob.client.goOffline();
    assert.equal(bob.presence.remotes.size, 0, 'offline, nobody is shown live');
    for (let i = 0; i < 5; i++) bob.doc.submit(ops.textInsert(['text'], 0, 'x'));
    await ann.client.close();
    for (let i = 0; i < 5; i++) bob.doc.submit(ops.textInsert(['text'], 0, 'y'));
    assert.equal(bob.presence.remotes.size, 0, 'typing offline brings no one back');
    assert.deepEqual(
      seenOffline.filter((name) => name !== null),
      [],
      'no presence reappeared while offline',
    );

    // Back online, with cid present: bob sees cid (the server's view) and never ann again.
    const cid = await joinDoc(server.url, 'cid', closers);
    cid.presence.submit({ path: ['text'], anchor: 0, head: 0, user: { name: 'cid' } });
    const seenOnline: string[] = [];
    bob.presence.on('change', (_id, value) => {
      if (value) seenOnline.push(value.user.name);
    });
    bob.client.goOnline();
    await bob.doc.whenSynced();
    await waitFor(() => cursorOf(bob, 'cid') !== null, { what: 'bob sees cid after reconnecting' });
    // One more round trip through the server: cid moves; once bob sees that, anything the
    // server had about ann would have arrived too.
    cid.presence.submit({ path: ['text'], anchor: 1, head: 1, user: { name: 'cid' } });
    await waitFor(() => cursorOf(bob, 'cid') === 1, { what: "bob sees cid's update" });
    assert.equal(cursorOf(bob, 'ann'), null);
    assert.ok(!seenOnline.includes('ann'), 'the leaver never reappeared');
    assert.equal(bob.presence.remotes.size, 1);
  });

  it('a presence ShareDB applies only after we went offline, or after we came back, never revives or rewinds its sender', async () => {
    const server = await startTestServer();
    closers.push(() => server.close());
    const ann = await joinDoc(server.url, 'ann', closers);
    const bob = await joinDoc(server.url, 'bob', closers);
    const cursor = (anchor: number): Cursor => ({ path: ['text'], anchor, head: anchor, user: { name: 'ann' } });
    ann.presence.submit(cursor(4));
    await waitFor(() => cursorOf(bob, 'ann') === 4, { what: "bob sees ann's cursor" });

    // ShareDB applies a received presence in the document's whenNothingPending: in a browser a
    // task of its own, so a click on "go offline" can land in between (the Chromium ghost).
    // Holding those callbacks makes that interleaving certain.
    const shareDoc = (bob.doc as unknown as { doc: Doc }).doc;
    const whenNothingPending = shareDoc.whenNothingPending.bind(shareDoc);
    const held: Array<() => void> = [];
    shareDoc.whenNothingPending = (callback: () => void) => void held.push(callback);
    ann.presence.submit(cursor(9));
    await waitFor(() => held.length > 0, { what: "ann's update to reach bob's ShareDB" });
    bob.client.goOffline();
    assert.equal(bob.presence.remotes.size, 0, 'offline, nobody is shown');
    shareDoc.whenNothingPending = whenNothingPending;
    const release = async (): Promise<void> => {
      let released = 0;
      const callbacks = held.splice(0);
      for (const callback of callbacks) {
        whenNothingPending(() => {
          callback();
          released++;
        });
      }
      await waitFor(() => released === callbacks.length, { what: 'the held presence to be applied' });
    };
    await release();
    assert.equal(bob.presence.remotes.size, 0, 'a presence received before going offline does not come back while offline');

    // Again, but released after coming back, once ann has moved on: her newer cursor stays.
    bob.client.goOnline();
    await waitFor(() => cursorOf(bob, 'ann') === 9, { what: 'bob sees ann again once online' });
    shareDoc.whenNothingPending = (callback: () => void) => void held.push(callback);
    ann.presence.submit(cursor(2));
    await waitFor(() => held.length > 0, { what: "ann's update to reach bob's ShareDB" });
    bob.client.goOffline();
    shareDoc.whenNothingPending = whenNothingPending;
    ann.presence.submit(cursor(12));
    bob.client.goOnline();
    await waitFor(() => cursorOf(bob, 'ann') === 12, { what: "bob sees ann's newest cursor after reconnecting" });
    await release();
    assert.equal(cursorOf(bob, 'ann'), 12, 'an update held from before the reconnect does not rewind ann');
    assert.equal(bob.presence.remotes.size, 1);
  });

  it('a snapshot the document loads (which makes ShareDB drop every remote presence) does not hide anyone', async () => {
    const server = await startTestServer();
    closers.push(() => server.close());
    const ann = await joinDoc(server.url, 'ann', closers);
    const bob = await joinDoc(server.url, 'bob', closers);
    ann.presence.submit({ path: ['text'], anchor: 4, head: 4, user: { name: 'ann' } });
    await waitFor(() => cursorOf(bob, 'ann') === 4, { what: "bob sees ann's cursor" });
    const gone: string[] = [];
    bob.presence.on('change', (id, value) => {
      if (value === null) gone.push(id);
    });
    // A reload (ShareDB's hard rollback: the type is dropped and the snapshot fetched again)
    // loads a snapshot as the first subscribe does; a presence received just before it is lost.
    const shareDoc = (bob.doc as unknown as { doc: Doc & { _hardRollback(err: Error): void } }).doc;
    bob.doc.on('error', () => undefined);
    shareDoc._hardRollback(new Error('reload for the test'));
    await waitFor(() => gone.length > 0, { what: "the load to drop ann's presence" });
    assert.equal(gone.length, 1, "the load dropped ann's presence");
    await waitFor(() => cursorOf(bob, 'ann') === 4, { what: 'ann to be shown again without moving' });
  });

  it('reports each remote update once', async () => {
    const server = await startTestServer();
    closers.push(() => server.close());
    const ann = await joinDoc(server.url, 'ann', closers);
    const bob = await joinDoc(server.url, 'bob', closers);
    const changes: Array<number | null> = [];
    bob.presence.on('change', (_id, value) => changes.push(value?.anchor ?? null));
    for (const anchor of [3, 7, 11]) {
      ann.presence.submit({ path: ['text'], anchor, head: anchor, user: { name: 'ann' } });
      await waitFor(() => cursorOf(bob, 'ann') === anchor, { what: `bob sees anchor ${anchor}` });
    }
    // An op that does not move ann's cursor (typed after it) changes nothing for bob.
    bob.doc.submit(ops.textInsert(['text'], 30, 'z'));
    await bob.doc.whenSynced();
    await waitFor(() => ann.doc.version === bob.doc.version, { what: 'ann has the op' });
    ann.presence.submit({ path: ['text'], anchor: 12, head: 12, user: { name: 'ann' } });
    await waitFor(() => cursorOf(bob, 'ann') === 12, { what: 'bob sees anchor 12' });
    assert.deepEqual(changes, [3, 7, 11, 12]);
  });

  it('a caret moved faster than the presence rate: updates are coalesced, none refused, the last one arrives', async () => {
    const server = await startTestServer({ PRESENCE_PER_SECOND: '5' });
    closers.push(() => server.close());
    const ann = await joinDoc(server.url, 'ann', closers);
    const bob = await joinDoc(server.url, 'bob', closers);
    const errors: string[] = [];
    ann.presence.on('error', (e) => errors.push(e.code));
    // 40 moves in a burst (a mouse drag), far over 5 per second.
    for (let anchor = 0; anchor < 40; anchor++) ann.presence.submit({ path: ['text'], anchor, head: anchor, user: { name: 'ann' } });
    assert.equal(ann.presence.value?.anchor, 39, 'our own value is the latest at once');
    await waitFor(() => cursorOf(bob, 'ann') === 39, { timeoutMs: 10_000, what: 'the last caret position to arrive' });
    assert.deepEqual(errors, []);
  });

  it('over the server presence rate: refused updates are sent again after the wait, the last one arrives, no error surfaces', async () => {
    const server = await startTestServer({ PRESENCE_PER_SECOND: '1' });
    closers.push(() => server.close());
    const ann = await joinDoc(server.url, 'ann', closers);
    const bob = await joinDoc(server.url, 'bob', closers);
    const errors: string[] = [];
    ann.presence.on('error', (e) => errors.push(e.code));
    // A caret moving every 100 ms (each a separate send): past the burst of 2 the server
    // refuses with TANDEM_RATE_LIMITED and the handle re-sends the latest after the wait.
    for (let anchor = 1; anchor <= 6; anchor++) {
      ann.presence.submit({ path: ['text'], anchor, head: anchor, user: { name: 'ann' } });
      const sentAt = Date.now();
      await waitFor(() => Date.now() - sentAt >= 100, { what: 'typing pace' });
    }
    await waitFor(() => cursorOf(bob, 'ann') === 6, { timeoutMs: 10_000, what: 'the last caret position to arrive' });
    assert.deepEqual(errors, []);
  });
});
