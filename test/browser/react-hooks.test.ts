/**
 * The React hooks (client/react) in Chromium: test/browser/react-page.ts, bundled from
 * source with React's development build and rendered in StrictMode, in two browsers against
 * a real Tandem server. Edits typed in one page render in the other with the server's
 * version; the pending count rises offline and drops once acknowledged; presence travels;
 * unmounting lets go of everything, on the page and on the server.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { Agent } from '../../server/auth/agent-identity.js';
import { heldSubscriptions } from '../../server/limits/subscriptions.js';
import { waitFor } from '../helpers/wait.js';
import { usePageFixture } from './browser-fixture.js';
import { ROOT, type User } from './helpers-browser.js';
import { serverSnapshot } from './helpers-page.js';
import type { ReactTestWindow } from './react-page.js';

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>react hooks</title>
<link rel="icon" href="data:,"></head><body><div id="root"></div><script src="/react-page.js"></script></body></html>`;

/** What the page renders (the data-* attributes of #note and #status, the carets list). */
interface Rendered {
  ready: boolean;
  text: string;
  version: number | null;
  pending: number;
  state: string;
  statusVersion: number | null;
  statusPending: number;
  error: string;
  carets: string[];
}

async function rendered(page: Page): Promise<Rendered> {
  return page.evaluate(() => {
    const note = document.getElementById('note');
    const status = document.getElementById('status');
    const num = (s: string | undefined): number | null => (s === undefined || s === 'null' ? null : Number(s));
    return {
      ready: note?.dataset.ready === 'true',
      text: document.getElementById('shown')?.textContent ?? '',
      version: num(note?.dataset.version),
      pending: Number(note?.dataset.pending ?? -1),
      state: status?.dataset.state ?? '',
      statusVersion: num(status?.dataset.version),
      statusPending: Number(status?.dataset.pending ?? -1),
      error: status?.dataset.error ?? '',
      carets: Array.from(document.querySelectorAll('#carets li'), (li) => li.textContent ?? ''),
    };
  });
}

/** Polls the page until `test` holds for what it renders; returns that. */
async function waitRendered(page: Page, test: (r: Rendered) => boolean, what: string): Promise<Rendered> {
  let last: Rendered | null = null;
  try {
    const found = await waitFor(
      async () => {
        const now = await rendered(page);
        last = now;
        return test(now) ? now : null;
      },
      { timeoutMs: 15_000, what },
    );
    assert.ok(found);
    return found;
  } catch (err) {
    throw new Error(`${(err as Error).message}; last rendered: ${JSON.stringify(last)}`);
  }
}

describe('browser: React hooks (useTandemDoc, usePresence, useConnectionState)', function () {
  this.timeout(90_000);
  const fixture = usePageFixture(PAGE, '/react-page.js', {
    entryPoints: [join(ROOT, 'test/browser/react-page.ts')],
    // React's development build: StrictMode runs every effect twice only there.
    define: { 'process.env.NODE_ENV': '"development"' },
  });
  /** Every ShareDB agent of this test's server, to count what a page subscribes to. */
  let agents: Agent[] = [];
  let counter = 0;

  beforeEach(() => {
    agents = [];
    fixture.server.backend.use('connect', (context, next) => {
      agents.push(context.agent);
      next();
    });
  });

  async function open(name: string, doc: string): Promise<User> {
    const user = await fixture.launch(name);
    await user.page.goto(`${fixture.site.url}/?${new URLSearchParams({ server: fixture.server.url, doc, name })}`);
    await waitRendered(user.page, (r) => r.ready && r.state === 'online', `${name}'s page to load ${doc}`);
    return user;
  }

  /** What the server holds for `user`'s live connection: 'doc:<id>' and 'presence:<channel>' entries. */
  async function serverSubscriptions(user: User): Promise<string[]> {
    const src = await user.page.evaluate(() => (window as ReactTestWindow).reactTest!.client.id);
    const held: string[] = [];
    for (const agent of agents) {
      // ShareDB's Agent state, not declared by @types/sharedb (see server/limits/subscriptions.ts).
      const state = agent as unknown as {
        src: string | null;
        closed: boolean;
        subscribedDocs: Record<string, Record<string, unknown>>;
        subscribedPresences: Record<string, unknown>;
      };
      if (state.src !== src || state.closed) continue;
      for (const ids of Object.values(state.subscribedDocs)) held.push(...Object.keys(ids).map((id) => `doc:${id}`));
      held.push(...Object.keys(state.subscribedPresences).map((channel) => `presence:${channel}`));
      // The same count as the subscription limit's, so nothing is held outside these maps.
      assert.equal(heldSubscriptions(agent), held.length);
    }
    return held.sort();
  }

  /** React's development build warns about unstable snapshots, leaks and the like: none may show. */
  function assertQuietPages(): void {
    assert.deepEqual(
      fixture.users.flatMap((u) => u.log),
      [],
      'console errors or warnings in the pages',
    );
  }

  const serverVersion = async (doc: string): Promise<number> => (await serverSnapshot(fixture.server, 'react', doc)).v;

  it('renders the other browser’s typing with the server’s version; pending rises offline and drops once acknowledged', async () => {
    const doc = `react-${process.pid}-${++counter}`;
    const alice = await open('Alice', doc);
    const bob = await open('Bob', doc);

    await alice.page.click('#text');
    await alice.page.keyboard.type('Hello');
    // Alice's own ops are acknowledged: nothing pending, and her version is the server's.
    const aliceSynced = await waitRendered(alice.page, (r) => r.text === 'Hello' && r.pending === 0, 'Alice’s edits to be acknowledged');
    const v1 = await serverVersion(doc);
    assert.equal(aliceSynced.version, v1);
    assert.equal(aliceSynced.statusVersion, v1, 'the second component on the document renders the same version');
    await waitRendered(
      bob.page,
      (r) => r.text === 'Hello' && r.version === v1 && r.statusVersion === v1,
      'Bob to render Alice’s text at the server’s version',
    );

    // Offline: the edit renders at once and counts as pending; nobody else sees it.
    await alice.page.evaluate(() => (window as ReactTestWindow).reactTest!.client.goOffline());
    await waitRendered(alice.page, (r) => r.state === 'offline', 'Alice to render offline');
    await alice.page.click('#text');
    await alice.page.keyboard.press('End');
    await alice.page.keyboard.type(' world');
    const offline = await waitRendered(alice.page, (r) => r.text === 'Hello world', 'Alice’s offline edit to render');
    assert.ok(offline.pending >= 1, `pending while offline: ${offline.pending}`);
    assert.equal(offline.statusPending, offline.pending);
    assert.equal(offline.version, v1, 'no acknowledgement while offline');
    assert.equal((await rendered(bob.page)).text, 'Hello');

    await alice.page.evaluate(() => (window as ReactTestWindow).reactTest!.client.goOnline());
    const v2 = await waitFor(
      async () => {
        const v = await serverVersion(doc);
        return v > v1 ? v : 0;
      },
      { what: 'the offline edit to reach the server' },
    );
    const back = await waitRendered(
      alice.page,
      (r) => r.state === 'online' && r.pending === 0 && r.version === v2,
      'Alice’s pending count to drop',
    );
    assert.equal(back.statusPending, 0);
    assert.equal(back.error, '');
    await waitRendered(bob.page, (r) => r.text === 'Hello world' && r.version === v2, 'Bob to render the edit made offline');
    assert.deepEqual((await serverSnapshot(fixture.server, 'react', doc)).data, { text: 'Hello world' });

    // Bob answers; Alice renders it.
    await bob.page.click('#text');
    await bob.page.keyboard.press('End');
    await bob.page.keyboard.type('!');
    await waitRendered(alice.page, (r) => r.text === 'Hello world!', 'Alice to render Bob’s edit');

    // StrictMode mounted every component twice, and two components use the document: still
    // one handle, one listener.
    const shared = await alice.page.evaluate(() => {
      const api = (window as ReactTestWindow).reactTest!;
      return { handles: api.handles.length, listeners: api.handles[0]!.listenerCount('change'), open: api.openDocs() };
    });
    assert.deepEqual(shared, { handles: 1, listeners: 1, open: 1 });
    assertQuietPages();
  });

  it('shows presence set in one page in the other; unmounting and switching documents let go of handles and server subscriptions', async () => {
    const doc = `react-${process.pid}-${++counter}`;
    const other = `${doc}-other`;
    const alice = await open('Alice', doc);
    const bob = await open('Bob', doc);

    await alice.page.click('#text');
    await alice.page.keyboard.type('abc');
    await waitRendered(bob.page, (r) => r.text === 'abc', 'Bob to render Alice’s text');
    await alice.page.keyboard.press('ArrowLeft');
    await waitRendered(bob.page, (r) => r.carets.includes('Alice@2'), 'Bob to render Alice’s caret');
    await bob.page.click('#text');
    await bob.page.keyboard.press('Home');
    await waitRendered(alice.page, (r) => r.carets.includes('Bob@0'), 'Alice to render Bob’s caret');
    // One document and its presence channel.
    const holds = (id: string): string[] => [`doc:${id}`, `presence:react.${id}`];
    assert.deepEqual(await serverSubscriptions(alice), holds(doc));

    // Switching documents closes the old handle (Bob stops seeing Alice's caret there).
    await alice.page.evaluate((id) => (window as ReactTestWindow).reactTest!.setDoc(id), other);
    await waitRendered(alice.page, (r) => r.ready && r.text === '', 'Alice to render the other document');
    await waitRendered(bob.page, (r) => r.carets.length === 0, 'Alice’s caret to leave Bob’s document');
    // The old slot counts until its handle's close() resolved: after the server took the
    // presence removal (what Bob just saw) and then the unsubscribe, one more round trip.
    await waitFor(() => alice.page.evaluate(() => (window as ReactTestWindow).reactTest!.openDocs() === 1), {
      what: 'the old document to finish closing',
    });
    const switched = await alice.page.evaluate(() => {
      const api = (window as ReactTestWindow).reactTest!;
      return { handles: api.handles.length, firstClosed: api.handles[0]!.closed, open: api.openDocs() };
    });
    assert.deepEqual(switched, { handles: 2, firstClosed: true, open: 1 });
    await waitFor(async () => JSON.stringify(await serverSubscriptions(alice)) === JSON.stringify(holds(other)), {
      what: 'the server to hold only the other document for Alice',
    });

    // Back to the first document: a fresh handle, with what was typed meanwhile.
    await bob.page.keyboard.type('>');
    await alice.page.evaluate((id) => (window as ReactTestWindow).reactTest!.setDoc(id), doc);
    await waitRendered(alice.page, (r) => r.ready && r.text === '>abc', 'Alice to reopen the first document');

    // Unmounting every component: no handle, no listener, no subscription left.
    await alice.page.click('#text');
    await waitRendered(bob.page, (r) => r.carets.some((c) => c.startsWith('Alice@')), 'Alice’s caret to be back');
    await alice.page.evaluate(() => (window as ReactTestWindow).reactTest!.show(false));
    await alice.page.waitForSelector('#unmounted');
    await waitFor(() => alice.page.evaluate(() => (window as ReactTestWindow).reactTest!.openDocs() === 0), {
      what: 'the hooks to close every document',
    });
    const after = await alice.page.evaluate(() => {
      const api = (window as ReactTestWindow).reactTest!;
      return api.handles.map((handle) => ({ closed: handle.closed, listeners: handle.listenerCount('change') }));
    });
    assert.deepEqual(after, [
      { closed: true, listeners: 0 },
      { closed: true, listeners: 0 },
      { closed: true, listeners: 0 },
    ]);
    await waitFor(async () => (await serverSubscriptions(alice)).length === 0, { what: 'the server to hold nothing for Alice' });
    await waitRendered(bob.page, (r) => r.carets.length === 0, 'Alice’s caret to leave when her components unmount');
    assert.equal((await rendered(alice.page)).state, '', 'nothing rendered');

    // Mounting again works (the connection stayed open).
    await alice.page.evaluate(() => (window as ReactTestWindow).reactTest!.show(true));
    await waitRendered(alice.page, (r) => r.ready && r.text === '>abc' && r.state === 'online', 'Alice to mount the note again');
    assertQuietPages();
  });
});
