/**
 * The React hooks' stores (client/react/doc-store.ts, presence-store.ts) driven as
 * useSyncExternalStore drives them, against an in-process server, plus server-side
 * rendering of the hooks. The hooks in a browser: test/browser/react-hooks.test.ts.
 */
import assert from 'node:assert/strict';
import { createElement as h } from 'react';
import { renderToString } from 'react-dom/server';
import { ops, type TandemClient } from '../../client/index.js';
import { docSnapshot, openDocCount, subscribeDoc, type DocSnapshot } from '../../client/react/doc-store.js';
import { TandemProvider, useConnectionState, usePresence, useTandemDoc } from '../../client/react/index.js';
import { presenceSnapshot, setPresence, subscribePresence } from '../../client/react/presence-store.js';
import { useServerPerTest } from '../helpers/server.js';
import { sdkClient } from '../helpers/sdk-clients.js';
import { waitFor } from '../helpers/wait.js';

interface Note {
  text: string;
}

const notes = (client: TandemClient, id: string): DocSnapshot<Note> => docSnapshot(client, 'notes', id) as DocSnapshot<Note>;

/** Polls until `find` returns a value (not null or undefined); returns it. */
async function until<T>(find: () => T | null | undefined, what: string): Promise<T> {
  const found = await waitFor(find, { what });
  assert.ok(found !== null && found !== undefined);
  return found;
}

function opened(client: TandemClient, id: string): Promise<DocSnapshot<Note>> {
  return until(() => {
    const snapshot = notes(client, id);
    return snapshot.ready && snapshot.handle ? snapshot : null;
  }, `notes/${id} to be open`);
}

describe('react: document and presence stores', function () {
  const fixture = useServerPerTest();
  const { closers } = fixture;

  it('shares one handle between subscribers, keeps snapshots stable, notifies on acks, and closes after the last unsubscribe (not between StrictMode’s unmount and remount)', async () => {
    const client = sdkClient(fixture.server.url, closers);
    const seen: Array<DocSnapshot<Note>> = [];
    const notify = (): void => {
      seen.push(notes(client, 'shared'));
    };
    // StrictMode: subscribe, unsubscribe and subscribe again within one commit.
    const first = subscribeDoc(client, 'notes', 'shared', { create: { text: '' } }, notify);
    first();
    const second = subscribeDoc(client, 'notes', 'shared', { create: { text: '' } }, notify);
    const third = subscribeDoc(client, 'notes', 'shared', {}, notify);
    const ready = await opened(client, 'shared');
    const handle = ready.handle!;
    assert.deepEqual(ready.data, { text: '' });
    assert.equal(notes(client, 'shared'), ready, 'the same object until something changes');
    assert.equal(handle.listenerCount('change'), 1, 'one listener per document, not per subscriber');
    assert.equal(openDocCount(client), 1);

    handle.submit(ops.textInsert(['text'], 0, 'hi'));
    const edited = notes(client, 'shared');
    assert.notEqual(edited, ready);
    assert.deepEqual(edited.data, { text: 'hi' });
    assert.equal(edited.pending, 1);
    // The ack changes only version and pending count; subscribers are told.
    const acked = await until(() => seen.find((s) => s.pending === 0 && s.version === edited.version! + 1), 'a notification for the ack');
    assert.equal(acked.data, edited.data);
    assert.equal(acked.canUndo, true);
    assert.equal(acked.canRedo, false);
    // Undo and redo show in the snapshot (the handle's 'history' event).
    const beforeUndo = seen.length;
    assert.equal(handle.undo(), true);
    const undone = notes(client, 'shared');
    assert.deepEqual(undone.data, { text: '' });
    assert.equal(undone.canUndo, false);
    assert.equal(undone.canRedo, true);
    assert.ok(seen.length > beforeUndo, 'subscribers were told');
    assert.equal(handle.redo(), true);
    assert.deepEqual(notes(client, 'shared').data, { text: 'hi' });
    assert.equal(notes(client, 'shared').canRedo, false);
    await handle.whenSynced();

    second();
    third();
    // Released on a timer: a synchronous resubscribe (StrictMode) would have kept it.
    assert.equal(handle.closed, false);
    await waitFor(() => handle.closed && openDocCount(client) === 0, { what: 'the handle to be closed' });
    assert.equal(handle.listenerCount('change'), 0);
  });

  it('a subscriber arriving while the document closes gets a new handle once it closed', async () => {
    const client = sdkClient(fixture.server.url, closers);
    const unsubscribe = subscribeDoc(client, 'notes', 'reopen', { create: { text: 'kept' } }, () => undefined);
    const old = (await opened(client, 'reopen')).handle!;
    unsubscribe();
    await waitFor(() => old.closed, { what: 'closing to start' });
    // client.doc() would throw now ("is closing"); the store waits for the close instead.
    const again = subscribeDoc(client, 'notes', 'reopen', {}, () => undefined);
    closers.push(async () => again());
    const reopened = await opened(client, 'reopen');
    assert.notEqual(reopened.handle, old);
    assert.deepEqual(reopened.data, { text: 'kept' });
    assert.equal(reopened.error, null);
  });

  it('presence: remotes as a new Map per change, our own value, and cleared for the others when the last subscriber leaves', async () => {
    const a = sdkClient(fixture.server.url, closers);
    const b = sdkClient(fixture.server.url, closers);
    const closeA = subscribeDoc(a, 'notes', 'presence', { create: { text: 'abc' } }, () => undefined);
    closers.push(async () => closeA());
    const docA = (await opened(a, 'presence')).handle!;
    const closeB = subscribeDoc(b, 'notes', 'presence', {}, () => undefined);
    closers.push(async () => closeB());
    const docB = (await opened(b, 'presence')).handle!;

    const offA = subscribePresence(docA, () => undefined);
    const offB = subscribePresence(docB, () => undefined);
    closers.push(async () => offB());
    const caret = { path: ['text'], anchor: 2, head: 2, user: { name: 'A' } };
    setPresence(docA, caret);
    assert.deepEqual(presenceSnapshot(docA).local, caret);
    const shown = await until(() => {
      const snapshot = presenceSnapshot(docB);
      return snapshot.remotes.size === 1 ? snapshot : null;
    }, 'B to see A’s caret');
    assert.deepEqual([...shown.remotes.values()], [caret]);
    assert.equal(presenceSnapshot(docB), shown, 'stable until something changes');

    offA();
    const gone = await until(() => {
      const snapshot = presenceSnapshot(docB);
      return snapshot.remotes.size === 0 ? snapshot : null;
    }, 'A’s caret to be cleared');
    assert.notEqual(gone.remotes, shown.remotes);
    assert.equal(presenceSnapshot(docA).local, null);
  });

  it('server-side rendering shows the loading state and opens nothing; the hooks need a provider', () => {
    const client = sdkClient(fixture.server.url, closers);
    function Editor() {
      const note = useTandemDoc<Note>('notes', 'ssr', { create: { text: '' } });
      const presence = usePresence(note.handle);
      const state = useConnectionState();
      return h('p', null, `${String(note.ready)} ${String(note.version)} ${note.pending} ${presence.remotes.size} ${state}`);
    }
    const html = renderToString(h(TandemProvider, { client }, h(Editor)));
    assert.equal(html, `<p>false null 0 0 ${client.state}</p>`);
    assert.equal(openDocCount(client), 0);
    assert.throws(() => renderToString(h(Editor)), /inside a <TandemProvider/);
  });
});
