/**
 * The textarea/<input> and CodeMirror bindings in Chromium against a second user that is a
 * Node SDK client, so remote edits land at exact code point offsets: selections keep their
 * characters, IME compositions are not broken, local typing becomes text edits.
 */
import assert from 'node:assert/strict';
import { connect, ops, type DocHandle, type JSONOp } from '../../client/index.js';
import { waitFor } from '../helpers/wait.js';
import { useBrowserFixture } from './browser-fixture.js';
import type { User } from './helpers-browser.js';
import { pageView, select, selectedText, waitConverged, type DemoData, type DemoWindow, type Field } from './helpers-page.js';

describe('browser: editor bindings against a remote SDK client', function () {
  this.timeout(60_000);
  const fx = useBrowserFixture('bind');

  /** Alice in Chromium and Bob as a Node SDK client, both on the demo document. */
  async function start(): Promise<{ alice: User; bob: DocHandle<DemoData> }> {
    const alice = await fx.openDemo('Alice');
    const client = connect({ url: fx.server.url, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    fx.teardown.add(() => client.close());
    const bob = client.doc<DemoData>('demo', fx.docId);
    await bob.ready;
    return { alice, bob };
  }

  /** Bob inserts `text` at code point `offset` of `field` and waits until Alice shows it. */
  async function bobInserts(alice: User, bob: DocHandle<DemoData>, field: Field, offset: number, text: string): Promise<void> {
    bob.submit(ops.textInsert([field], offset, text));
    await bob.whenSynced();
    await waitConverged([alice.page], fx.server, fx.docId);
  }

  it('selections keep their characters and carets stay after the last typed character while a remote user inserts before, at and inside them (emoji too)', async () => {
    const { alice, bob } = await start();
    for (const field of ['notes', 'code'] as const) {
      const word = field === 'notes' ? 'same document' : 'greet(name)';
      let text = (await pageView(alice.page)).data![field];
      const at = text.indexOf(word);
      await select(alice.page, field, at, at + word.length);
      // Offsets are code points: after the emoji, code points and UTF-16 units differ.
      const cp = (s: string, utf16: number): number => Array.from(s.slice(0, utf16)).length;
      for (const [where, insert] of [
        ['start', '🎉'],
        ['before', '<<'],
        ['after', '>>'],
      ] as const) {
        text = (await pageView(alice.page)).data![field];
        const from = text.indexOf(word);
        const utf16 = where === 'start' ? 0 : where === 'before' ? from : from + word.length;
        await bobInserts(alice, bob, field, cp(text, utf16), insert);
        assert.equal(await selectedText(alice.page, field), word, `${field}: Alice's selection after Bob inserted ${insert} ${where} it`);
      }
      // Inside: the selection grows with text typed into it.
      text = (await pageView(alice.page)).data![field];
      const inside = cp(text, text.indexOf(word)) + 4;
      await bobInserts(alice, bob, field, inside, '+');
      assert.equal(
        await selectedText(alice.page, field),
        `${word.slice(0, 4)}+${word.slice(4)}`,
        `${field}: selection after an insert inside it`,
      );
    }
    // A caret stays after the character typed last when a remote insert lands exactly at it.
    for (const field of ['notes', 'code'] as const) {
      await select(alice.page, field, 'end');
      await alice.page.keyboard.type('q😀');
      await waitConverged([alice.page], fx.server, fx.docId);
      const text = (await pageView(alice.page)).data![field];
      // Bob inserts exactly at Alice's caret (the end), in code points.
      await bobInserts(alice, bob, field, Array.from(text).length, 'BOB');
      await alice.page.keyboard.type('z');
      const final = await waitConverged([alice.page], fx.server, fx.docId);
      assert.ok(final[field].endsWith('q😀zBOB'), `${field}: ${JSON.stringify(final[field].slice(-12))}`);
    }
  });

  it('the <input> and textarea send text edits (never whole strings) and leave an open IME composition alone while remote edits arrive', async () => {
    const { alice, bob } = await start();
    // Typing, deleting and replacing a selection: Bob must receive text edits only.
    const seen: JSONOp[] = [];
    bob.on('op', (op, meta) => {
      // Other clients may send no-ops (null); only real edits are judged below.
      if (meta.source === 'remote' && op !== null) seen.push(op);
    });
    await select(alice.page, 'title', 'end');
    await alice.page.keyboard.type('!!');
    await alice.page.keyboard.press('Backspace');
    await select(alice.page, 'title', 0, 7);
    await alice.page.keyboard.type('Hello');
    await select(alice.page, 'notes', 0, 8);
    await alice.page.keyboard.press('Delete');
    const edited = await waitConverged([alice.page], fx.server, fx.docId);
    await waitFor(() => bob.data?.title === edited.title && bob.data?.notes === edited.notes, { what: 'Bob to catch up' });
    assert.equal(edited.title, 'Hello to Tandem!');
    assert.ok(edited.notes.startsWith(' on this page'), edited.notes);
    assert.ok(seen.length > 0, 'Bob saw ops');
    // A json1 text edit is [key, {es: textOp}] (several fields' edits may arrive composed into
    // one op, as descents); a whole-string replace would carry {r, i} components instead.
    const components = (op: unknown): object[] =>
      Array.isArray(op) ? op.flatMap(components) : op !== null && typeof op === 'object' ? [op] : [];
    for (const op of seen) {
      const parts = components(op);
      assert.ok(parts.length > 0 && parts.every((c) => Object.keys(c).join() === 'es'), `not a text edit: ${JSON.stringify(op)}`);
    }

    // An IME composition (Chromium's own, through CDP) while Bob edits the same string.
    const cdp = await alice.context.newCDPSession(alice.page);
    await select(alice.page, 'notes', 'end');
    await cdp.send('Input.imeSetComposition', { text: 'に', selectionStart: 1, selectionEnd: 1 });
    await cdp.send('Input.imeSetComposition', { text: 'にほ', selectionStart: 2, selectionEnd: 2 });
    bob.submit(ops.textInsert(['notes'], 0, 'REMOTE '));
    await bob.whenSynced();
    // Alice's document has Bob's edit, but her field keeps the open composition untouched.
    await alice.page.waitForFunction(() => (window as unknown as DemoWindow).tandemDemo!.handle.data?.notes.startsWith('REMOTE '));
    const during = await pageView(alice.page);
    assert.ok(during.shown.notes.endsWith('にほ'), `composition kept: ${JSON.stringify(during.shown.notes)}`);
    assert.ok(!during.shown.notes.startsWith('REMOTE'), 'the field is not rewritten mid-composition');
    await cdp.send('Input.insertText', { text: '日本' });
    const final = await waitConverged([alice.page], fx.server, fx.docId);
    assert.equal(final.notes, `REMOTE ${edited.notes}日本`);
    await waitFor(() => bob.data?.notes === final.notes, { what: 'Bob to have the composed text' });

    // CodeMirror manages its own compositions; a remote edit elsewhere must not break one.
    await select(alice.page, 'code', 'end');
    await cdp.send('Input.imeSetComposition', { text: 'か', selectionStart: 1, selectionEnd: 1 });
    bob.submit(ops.textInsert(['code'], 0, '// remote\n'));
    await bob.whenSynced();
    await alice.page.waitForFunction(() => (window as unknown as DemoWindow).tandemDemo!.handle.data?.code.startsWith('// remote'));
    await cdp.send('Input.imeSetComposition', { text: 'かな', selectionStart: 2, selectionEnd: 2 });
    await cdp.send('Input.insertText', { text: '仮名' });
    const code = (await waitConverged([alice.page], fx.server, fx.docId)).code;
    assert.equal(code, `// remote\n${edited.code}仮名`);
  });
});
