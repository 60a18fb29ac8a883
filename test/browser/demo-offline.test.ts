/**
 * Offline in Chromium: a page whose browser context loses the network keeps editing and
 * converges when it is back; a page reloaded while its edits are pending offline resends
 * them from the SDK's IndexedDB outbox, and the server applies them exactly once.
 */
import assert from 'node:assert/strict';
import { connect, ops } from '../../client/index.js';
import { waitFor } from '../helpers/wait.js';
import { useBrowserFixture } from './browser-fixture.js';
import type { User } from './helpers-browser.js';
import { pageView, select, serverSnapshot, waitConverged, waitReady, type DemoData, type DemoWindow } from './helpers-page.js';

/** Occurrences of `needle` in `text`. */
const occurrences = (text: string, needle: string): number => text.split(needle).length - 1;

describe('browser: offline editing in the demo page', function () {
  this.timeout(60_000);
  const fx = useBrowserFixture('offline');
  const open = (name: string): Promise<User> => fx.openDemo(name);

  it('a page whose browser context goes offline keeps typing; back online, both pages converge with nothing lost', async () => {
    const [alice, bob] = await Promise.all([open('Alice'), open('Bob')]);
    await alice.context.setOffline(true);
    await alice.page.waitForFunction(() => (window as unknown as DemoWindow).tandemDemo!.client.state !== 'online');
    await alice.page.waitForSelector('#state:not([data-state="online"])');

    // Alice types offline in both editors while Bob types online in both.
    await select(alice.page, 'notes', 'end');
    await alice.page.keyboard.type(' alice offline notes');
    await select(alice.page, 'code', 'end');
    await alice.page.keyboard.type('// alice offline code');
    await select(bob.page, 'notes', 0);
    await bob.page.keyboard.type('Bob online notes. ');
    await select(bob.page, 'code', 0);
    await bob.page.keyboard.type('// Bob online code\n');
    await waitConverged([bob.page], fx.server, fx.docId);

    const offline = await pageView(alice.page);
    assert.ok(offline.pending > 0, 'Alice has pending ops while offline');
    assert.ok(!offline.data!.notes.includes('Bob online'), 'offline, Alice has not seen Bob yet');
    assert.ok(
      !JSON.stringify((await serverSnapshot(fx.server, 'demo', fx.docId)).data).includes('alice offline'),
      'the server has nothing of it',
    );

    await alice.context.setOffline(false);
    const final = await waitConverged([alice.page, bob.page], fx.server, fx.docId, 30_000);
    for (const [text, marker] of [
      [final.notes, ' alice offline notes'],
      [final.code, '// alice offline code'],
      [final.notes, 'Bob online notes. '],
      [final.code, '// Bob online code\n'],
    ] as const) {
      assert.equal(occurrences(text, marker), 1, `${JSON.stringify(marker)} exactly once in ${JSON.stringify(text)}`);
    }
  });

  it('a page reloaded while its edits are pending offline resends them from its outbox: present exactly once', async () => {
    const alice = await open('Alice');
    const client = connect({ url: fx.server.url, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    fx.teardown.add(() => client.close());
    const bob = client.doc<DemoData>('demo', fx.docId);
    await bob.ready;

    // The demo's button: the SDK holds the connection down, edits queue in IndexedDB.
    await alice.page.click('#offline-toggle');
    await alice.page.waitForSelector('#state[data-state="offline"]');
    await select(alice.page, 'notes', 'end');
    await alice.page.keyboard.type(' [pending-notes]');
    await select(alice.page, 'code', 'end');
    await alice.page.keyboard.type('/* pending-code */');
    const saved = await alice.page.evaluate(async () => {
      const demo = (window as unknown as DemoWindow).tandemDemo!;
      await demo.handle.whenSaved();
      return { pending: demo.handle.pendingCount, durable: demo.handle.durable };
    });
    assert.ok(saved.durable, "Alice's tab owns the document's outbox");
    assert.ok(saved.pending > 0, 'edits are pending');

    // Meanwhile Bob edits the same strings.
    bob.submit(ops.textInsert(['notes'], 0, 'Bob was here. '));
    bob.submit(ops.textInsert(['code'], 0, '// Bob\n'));
    await bob.whenSynced();

    await alice.page.reload();
    await waitReady(alice.page);
    // The reloaded page got the outbox back (the old page's Web Lock went with it).
    assert.equal(await alice.page.evaluate(() => (window as unknown as DemoWindow).tandemDemo!.handle.durable), true);
    const final = await waitConverged([alice.page], fx.server, fx.docId, 30_000);
    await waitFor(() => bob.data?.notes === final.notes && bob.data?.code === final.code, { what: 'Bob to catch up' });
    assert.equal(occurrences(final.notes, ' [pending-notes]'), 1, final.notes);
    assert.equal(occurrences(final.code, '/* pending-code */'), 1, final.code);
    assert.ok(final.notes.startsWith('Bob was here. '), final.notes);
    assert.ok(final.code.startsWith('// Bob\n'), final.code);
  });

  it('no ghost presence: offline a page shows nobody else; a user who left while it was offline never comes back', async () => {
    const [alice, bob] = await Promise.all([open('Alice'), open('Bob')]);
    const others = (user: User) =>
      user.page.evaluate(() => Array.from(document.querySelectorAll('#people .person:not(.me)'), (el) => (el as HTMLElement).dataset.name));
    await select(alice.page, 'notes', 0);
    await waitFor(async () => (await others(bob)).includes('Alice'), { what: "Bob's bar shows Alice" });

    await bob.page.click('#offline-toggle');
    await bob.page.waitForSelector('#state[data-state="offline"]');
    await waitFor(async () => (await others(bob)).length === 0, { what: "Bob's bar to empty while offline" });
    // Bob keeps typing before Alice's caret; Alice leaves meanwhile.
    await select(bob.page, 'notes', 0);
    await bob.page.keyboard.type('offline typing ');
    await alice.browser.close();
    await bob.page.keyboard.type('more ');
    assert.deepEqual(await others(bob), [], 'typing offline brings no one back');

    // Back online, with Carol here: Bob sees Carol, and never Alice again.
    const carol = await open('Carol');
    await select(carol.page, 'notes', 0);
    await bob.page.click('#offline-toggle');
    await bob.page.waitForSelector('#state[data-state="online"]');
    await waitFor(async () => (await others(bob)).includes('Carol'), { what: "Bob's bar shows Carol" });
    await waitConverged([bob.page, carol.page], fx.server, fx.docId);
    assert.deepEqual(await others(bob), ['Carol']);
  });
});
