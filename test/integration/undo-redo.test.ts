/**
 * `doc.undo()` / `doc.redo()` with two SDK clients on a real server: each user's undo
 * reverts exactly their own latest step, whatever the other did in between, redo brings it
 * back, and the history holds across pending ops, reconnects, rejections and reloads.
 */
import assert from 'node:assert/strict';
import { TandemError, TandemErrorCode, ops, type DocHandle } from '../../client/index.js';
import type { UndoOptions, UndoState } from '../../client/undo-manager.js';
import { sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { useServerPerTest } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

interface Note {
  text: string;
  items: string[];
  locked: { n: number };
}

const INITIAL: Note = { text: '', items: [], locked: { n: 0 } };

describe('sdk: undo and redo of your own edits', () => {
  const fixture = useServerPerTest();
  const { closers } = fixture;
  let docId = '';
  let counter = 0;

  beforeEach(() => {
    docId = `undo-${++counter}`;
    // An access rule for the rejection test: nobody may change `locked`.
    fixture.server.backend.use('submit', (context, next) => {
      const op = (context.op as { op?: unknown }).op;
      if (JSON.stringify(op ?? null).includes('"locked"')) {
        next(new TandemError(TandemErrorCode.FORBIDDEN, '`locked` is read-only'));
        return;
      }
      next();
    });
  });

  /** Alice (creates the doc) and Bob, both loaded. */
  async function open(
    undo: UndoOptions = { groupMs: 0 },
  ): Promise<{ a: DocHandle<Note>; b: DocHandle<Note>; goOffline(): void; goOnline(): void }> {
    const alice = sdkClient(fixture.server.url, closers);
    const bob = sdkClient(fixture.server.url, closers);
    const a = alice.doc<Note>('notes', docId, { create: INITIAL, undo });
    await a.ready;
    await a.whenSynced();
    const b = bob.doc<Note>('notes', docId, { undo });
    await b.ready;
    return { a, b, goOffline: () => alice.goOffline(), goOnline: () => alice.goOnline() };
  }

  /** Both synced and equal to the server's snapshot; returns the text. */
  async function settle(...docs: Array<DocHandle<Note>>): Promise<string> {
    await Promise.all(docs.map((d) => d.whenSynced()));
    const server = await serverSnapshot(fixture.server, 'notes', docId);
    await waitFor(() => docs.every((d) => d.version === server.v), { what: 'every client at the server version' });
    for (const d of docs) assert.deepEqual(d.data, server.data);
    return (server.data as Note).text;
  }

  const append = (doc: DocHandle<Note>, text: string): void => doc.submit(ops.textInsert(['text'], [...doc.data!.text].length, text));

  it("interleaved edits: each undo removes exactly that user's latest step, nothing of the other's; redo restores it", async () => {
    const { a, b } = await open();
    append(a, '[a1]');
    assert.equal(await settle(a, b), '[a1]');
    append(b, '[b1]');
    assert.equal(await settle(a, b), '[a1][b1]');
    append(a, '[a2]');
    assert.equal(await settle(a, b), '[a1][b1][a2]');
    b.submit(ops.textInsert(['text'], 4, '[b2]'));
    assert.equal(await settle(a, b), '[a1][b2][b1][a2]');
    // Alice deletes part of Bob's text too: that is her edit, hers to undo.
    a.submit(ops.textDelete(['text'], 8, 2));
    assert.equal(await settle(a, b), '[a1][b2]1][a2]');

    assert.equal(a.undo(), true);
    assert.equal(await settle(a, b), '[a1][b2][b1][a2]');
    assert.equal(a.undo(), true);
    assert.equal(await settle(a, b), '[a1][b2][b1]');
    assert.equal(b.undo(), true);
    assert.equal(await settle(a, b), '[a1][b1]');
    assert.equal(a.undo(), true);
    assert.equal(await settle(a, b), '[b1]');
    assert.equal(a.undo(), false, 'Alice has nothing left to undo');
    assert.equal(a.canUndo, false);
    assert.equal(b.canUndo, true);

    assert.equal(a.redo(), true);
    assert.equal(await settle(a, b), '[a1][b1]');
    assert.equal(b.redo(), true);
    assert.equal(await settle(a, b), '[a1][b2][b1]');
    assert.equal(a.redo(), true);
    assert.equal(await settle(a, b), '[a1][b2][b1][a2]');
    assert.equal(b.undo(), true);
    assert.equal(await settle(a, b), '[a1][b1][a2]');
    assert.equal(a.redo(), true, "Alice's deletion of Bob's text, again");
    assert.equal(await settle(a, b), '[a1]1][a2]');
  });

  it('typing within the pause is one step, even with the other user typing into it', async () => {
    const { a, b } = await open({ groupMs: 60_000 });
    for (const ch of 'hello') append(a, ch);
    await settle(a, b);
    b.submit(ops.textInsert(['text'], 2, 'BOB'));
    await settle(a, b);
    for (const ch of ' world') append(a, ch);
    assert.equal(await settle(a, b), 'heBOBllo world');
    assert.equal(a.undo(), true);
    assert.equal(await settle(a, b), 'BOB');
    assert.equal(a.canUndo, false);
    assert.equal(a.redo(), true);
    assert.equal(await settle(a, b), 'heBOBllo world');
  });

  it('undoes pending (unacknowledged) edits, and keeps the history right across a reconnect', async () => {
    const { a, b, goOffline, goOnline } = await open();
    append(a, 'one ');
    await settle(a, b);
    goOffline();
    append(a, 'two ');
    append(a, 'three ');
    assert.ok(a.pendingCount > 0);
    // Undo before the server has seen the edit: it is still Alice's to undo.
    assert.equal(a.undo(), true);
    assert.equal(a.data!.text, 'one two ');
    // Meanwhile Bob edits around Alice's pending text.
    b.submit(ops.textInsert(['text'], 0, 'B0 '));
    b.submit(ops.textInsert(['text'], [...b.data!.text].length, ' B9'));
    await b.whenSynced();
    assert.equal(a.data!.text, 'one two ', 'Alice is offline');
    goOnline();
    // Her pending ops are rebased and resent; Bob's arrive as remote ops.
    assert.equal(await settle(a, b), 'B0 one two  B9');
    assert.equal(a.undo(), true);
    assert.equal(await settle(a, b), 'B0 one  B9');
    assert.equal(a.undo(), true);
    assert.equal(await settle(a, b), 'B0  B9');
    assert.equal(a.redo(), true);
    assert.equal(a.redo(), true);
    assert.equal(a.redo(), true, 'the undone pending edit can be redone too');
    // Bob typed where "three " was: what an undo or redo puts back goes after that (as in
    // CodeMirror's and Quill's histories).
    assert.equal(await settle(a, b), 'B0 one two  B9three ');
    assert.equal(b.undo(), true);
    assert.equal(await settle(a, b), 'B0 one two three ');
  });

  it("structure: undo puts back someone else's item you removed, and removes your item with edits made inside it", async () => {
    const { a, b } = await open();
    b.submit(ops.insert(['items', 0], 'bob-1'));
    b.submit(ops.insert(['items', 1], 'bob-2'));
    await settle(a, b);
    a.submit(ops.remove(['items', 0]));
    a.submit(ops.insert(['items', 1], 'alice-1'));
    await settle(a, b);
    b.submit(ops.insert(['items', 0], 'bob-0'));
    b.submit(ops.textInsert(['items', 2], 0, '>'));
    await settle(a, b);
    assert.deepEqual(a.data!.items, ['bob-0', 'bob-2', '>alice-1']);
    assert.equal(a.undo(), true);
    await settle(a, b);
    assert.deepEqual(a.data!.items, ['bob-0', 'bob-2']);
    assert.equal(a.undo(), true);
    await settle(a, b);
    assert.deepEqual(a.data!.items, ['bob-0', 'bob-1', 'bob-2']);
    assert.equal(a.redo(), true);
    assert.equal(a.redo(), true);
    await settle(a, b);
    assert.deepEqual(a.data!.items, ['bob-0', 'bob-2', '>alice-1']);
  });

  it('an edit the server refused, or a reload, clears the history; events report changes', async () => {
    const { a, b } = await open();
    const states: UndoState[] = [];
    a.on('history', (s) => states.push(s));
    append(a, 'kept');
    await settle(a, b);
    const rejected = new Promise<void>((resolve) => a.once('rejected', () => resolve()));
    a.submit(ops.add(['locked', 'n'], 1));
    await rejected;
    await settle(a, b);
    assert.equal(a.data!.locked.n, 0, 'rolled back');
    // Rolling back cannot be told apart from the steps around it: the history is gone.
    assert.equal(a.canUndo, false);
    assert.equal(a.undo(), false);
    assert.equal(await settle(a, b), 'kept');

    // An edit submitted as not undoable stays, and undo skips over it.
    append(a, '!');
    a.submit(ops.textInsert(['text'], 0, 'SYS:'), { undoable: false });
    assert.equal(a.undo(), true);
    assert.equal(await settle(a, b), 'SYS:kept');
    assert.equal(a.canRedo, true);

    // A whole-document reload (after giving up pending ops) clears the history.
    await a.discardPending();
    await waitFor(() => a.data !== undefined, { what: 'the reload' });
    assert.equal(a.canUndo, false);
    assert.equal(a.canRedo, false);
    assert.equal(a.undo(), false);
    assert.deepEqual(states, [
      { canUndo: true, canRedo: false },
      { canUndo: false, canRedo: false },
      { canUndo: true, canRedo: false },
      { canUndo: false, canRedo: true },
      { canUndo: false, canRedo: false },
    ]);
  });
});
