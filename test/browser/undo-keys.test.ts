/**
 * The bindings' undo keys in Chromium, two users (one browser each) on one document: in the
 * <textarea> and in CodeMirror, Ctrl+Z undoes only the presser's own typing, Ctrl+Shift+Z
 * and Ctrl+Y redo it, and the browser's undo/redo menu items (`beforeinput` historyUndo /
 * historyRedo) do the same. The page (bundled from source below) binds both editors with
 * `bindableDoc`, a typing pause long enough that each user's typing is one step, and a
 * lower-precedence Mod-z keymap in CodeMirror that must never run.
 */
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import type { EditorView } from '@codemirror/view';
import type { DocHandle } from '../../client/index.js';
import { waitFor } from '../helpers/wait.js';
import { usePageFixture } from './browser-fixture.js';
import { ROOT, type User } from './helpers-browser.js';
import { serverSnapshot } from './helpers-page.js';

interface UndoDoc {
  notes: string;
  code: string;
}

/** What the page exposes as `window.undoPage`. */
interface UndoPageApi {
  handle: DocHandle<UndoDoc>;
  notes: HTMLTextAreaElement;
  code: EditorView;
  /** Runs of the page's own (lower-precedence) Mod-z binding in CodeMirror. */
  otherUndo: number;
}
type UndoWindow = Window & { undoPage?: UndoPageApi };

/** The page's script: both bindings on one document, bundled from the repository's source. */
const PAGE_SCRIPT = `
import { keymap } from '@codemirror/view';
import { connect } from './client/index.js';
import { createCollabEditor } from './client/bindings/codemirror.js';
import { bindableDoc } from './client/bindings/sdk-adapter.js';
import { bindTextField } from './client/bindings/textarea.js';

async function main() {
  const q = new URLSearchParams(location.search);
  const client = connect({ url: q.get('server'), reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
  // A long pause: a user's typing is one undo step until they undo or redo.
  const handle = client.doc('undo', q.get('doc'), { create: { notes: '', code: '' }, undo: { groupMs: 1e9 } });
  await handle.ready;
  const doc = bindableDoc(handle);
  const notes = document.getElementById('notes');
  bindTextField(notes, doc, ['notes']);
  const api = { handle, notes, code: null, otherUndo: 0 };
  const other = keymap.of([{ key: 'Mod-z', run: () => { api.otherUndo++; return true; } }]);
  api.code = createCollabEditor(document.getElementById('code'), doc, ['code'], { extensions: other }).view;
  window.undoPage = api;
}
main().catch((err) => console.error(err));
`;

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>undo keys</title>
<link rel="icon" href="data:,"></head><body><textarea id="notes"></textarea><div id="code"></div>
<script src="/undo-page.js"></script></body></html>`;

interface Shown {
  data: UndoDoc | undefined;
  pending: number;
  notes: string;
  code: string;
  otherUndo: number;
}

function shown(page: Page): Promise<Shown> {
  return page.evaluate(() => {
    const api = (window as unknown as UndoWindow).undoPage!;
    return {
      data: api.handle.data as UndoDoc | undefined,
      pending: api.handle.pendingCount,
      notes: api.notes.value,
      code: api.code.state.doc.toString(),
      otherUndo: api.otherUndo,
    };
  });
}

describe('browser: undo keys in the bindings revert only your own typing', function () {
  this.timeout(90_000);
  const fixture = usePageFixture(PAGE, '/undo-page.js', {
    stdin: { contents: PAGE_SCRIPT, resolveDir: ROOT, sourcefile: 'undo-page.ts', loader: 'ts' },
  });
  let counter = 0;

  async function open(name: string, doc: string): Promise<User> {
    const user = await fixture.launch(name);
    await user.page.goto(`${fixture.site.url}/?${new URLSearchParams({ server: fixture.server.url, doc, name })}`);
    await user.page.waitForFunction(() => (window as unknown as UndoWindow).undoPage !== undefined, null, { timeout: 15_000 });
    return user;
  }

  /**
   * Waits until both pages have nothing pending and their documents and editors equal the
   * server's snapshot; returns that snapshot's `field`.
   */
  async function converged(doc: string, pages: Page[], field: keyof UndoDoc): Promise<string> {
    let last = '';
    const data = await waitFor<UndoDoc | null>(
      async () => {
        const snapshot = (await serverSnapshot(fixture.server, 'undo', doc)).data as UndoDoc;
        const views = await Promise.all(pages.map(shown));
        last = JSON.stringify({ server: snapshot, pages: views });
        const same = (v: Shown): boolean =>
          v.pending === 0 &&
          v.data?.notes === snapshot.notes &&
          v.data?.code === snapshot.code &&
          v.notes === snapshot.notes &&
          v.code === snapshot.code;
        return views.every(same) ? snapshot : null;
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'both pages and the server to agree' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${last}`);
    });
    return data![field];
  }

  it('textarea: Ctrl+Z, Ctrl+Shift+Z, Ctrl+Y and the undo/redo menu items act on your own typing only', async () => {
    const doc = `undo-notes-${process.pid}-${++counter}`;
    const alice = await open('Alice', doc);
    const bob = await open('Bob', doc);
    const pages = [alice.page, bob.page];

    await alice.page.click('#notes');
    await alice.page.keyboard.type('alice ');
    assert.equal(await converged(doc, pages, 'notes'), 'alice ');
    await bob.page.click('#notes');
    await bob.page.keyboard.press('End');
    await bob.page.keyboard.type('bob');
    assert.equal(await converged(doc, pages, 'notes'), 'alice bob');

    await alice.page.keyboard.press('Control+z');
    assert.equal(await converged(doc, pages, 'notes'), 'bob');
    const caret = await alice.page.evaluate(() => (window as unknown as UndoWindow).undoPage!.notes.selectionStart);
    assert.equal(caret, 0, 'the caret goes to where the undone text was');
    await alice.page.keyboard.press('Control+Shift+KeyZ');
    assert.equal(await converged(doc, pages, 'notes'), 'alice bob');
    await alice.page.keyboard.press('Control+z');
    assert.equal(await converged(doc, pages, 'notes'), 'bob');
    await alice.page.keyboard.press('Control+y');
    assert.equal(await converged(doc, pages, 'notes'), 'alice bob');

    await bob.page.keyboard.press('Control+z');
    assert.equal(await converged(doc, pages, 'notes'), 'alice ');

    // The Edit menu's Undo arrives as a cancelable `beforeinput` with inputType historyUndo.
    const menu = (page: Page, inputType: string): Promise<boolean> =>
      page.evaluate((type) => {
        const event = new InputEvent('beforeinput', { inputType: type, bubbles: true, cancelable: true });
        (window as unknown as UndoWindow).undoPage!.notes.dispatchEvent(event);
        return event.defaultPrevented;
      }, inputType);
    assert.equal(await menu(alice.page, 'historyUndo'), true, 'the native undo is prevented');
    assert.equal(await converged(doc, pages, 'notes'), '');
    assert.equal(await menu(alice.page, 'historyRedo'), true);
    assert.equal(await converged(doc, pages, 'notes'), 'alice ');
    assert.equal(await menu(bob.page, 'historyRedo'), true);
    assert.equal(await converged(doc, pages, 'notes'), 'alice bob');
  });

  it('CodeMirror: Mod-z / Mod-Shift-z / Mod-y outrank other keymaps and act on your own typing only', async () => {
    const doc = `undo-code-${process.pid}-${++counter}`;
    const alice = await open('Alice', doc);
    const bob = await open('Bob', doc);
    const pages = [alice.page, bob.page];

    await alice.page.click('.cm-content');
    await alice.page.keyboard.type('let a = 1;');
    assert.equal(await converged(doc, pages, 'code'), 'let a = 1;');
    await bob.page.click('.cm-content');
    await bob.page.keyboard.press('Control+End');
    await bob.page.keyboard.press('Enter');
    await bob.page.keyboard.type('let b = 2;');
    assert.equal(await converged(doc, pages, 'code'), 'let a = 1;\nlet b = 2;');
    // Alice goes on typing at the start: still the same step (no pause, no undo since).
    await alice.page.keyboard.press('Control+Home');
    await alice.page.keyboard.type('// A\n');
    assert.equal(await converged(doc, pages, 'code'), '// A\nlet a = 1;\nlet b = 2;');

    await alice.page.keyboard.press('Control+z');
    assert.equal(await converged(doc, pages, 'code'), '\nlet b = 2;');
    await alice.page.keyboard.press('Control+Shift+KeyZ');
    assert.equal(await converged(doc, pages, 'code'), '// A\nlet a = 1;\nlet b = 2;');
    await bob.page.keyboard.press('Control+z');
    assert.equal(await converged(doc, pages, 'code'), '// A\nlet a = 1;');
    await bob.page.keyboard.press('Control+y');
    assert.equal(await converged(doc, pages, 'code'), '// A\nlet a = 1;\nlet b = 2;');

    // The browser's menu undo reaches CodeMirror's content as `beforeinput` too.
    const prevented = await alice.page.evaluate(() => {
      const event = new InputEvent('beforeinput', { inputType: 'historyUndo', bubbles: true, cancelable: true });
      (window as unknown as UndoWindow).undoPage!.code.contentDOM.dispatchEvent(event);
      return event.defaultPrevented;
    });
    assert.equal(prevented, true);
    assert.equal(await converged(doc, pages, 'code'), '\nlet b = 2;');
    for (const page of pages) assert.equal((await shown(page)).otherUndo, 0, "the page's own Mod-z binding never ran");
  });
});
