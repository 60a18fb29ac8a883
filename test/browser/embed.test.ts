/**
 * The embed API as people use it without a build step: the script-tag bundle
 * (dist/tandem-embed.js, global `Tandem`) in the shipped example page, collaborating with
 * the ES module bundle (dist/tandem-embed.mjs) in another browser. Also the HTTP side that
 * serves the demo and bundles.
 */
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/wait.js';
import { useBrowserFixture } from './browser-fixture.js';
import { buildBundles, startDemoServer, type StaticServer, type User } from './helpers-browser.js';
import { serverSnapshot } from './helpers-page.js';

/** A page that imports the ES module bundle (inline module script, no build step either). */
const MODULE_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>module embed</title>
<link rel="icon" href="data:,"></head><body><div id="editor"></div>
<script type="module">
  import { mount } from '/tandem-embed.mjs';
  const q = new URLSearchParams(location.search);
  window.editor = mount(document.getElementById('editor'), {
    url: q.get('server'), collection: 'embed', id: q.get('doc'), path: ['text'],
    user: { name: q.get('name'), color: '#3cb44b' }, editor: 'textarea',
  });
</script></body></html>`;

/** What the embed pages expose for the test (`window.editor` is mount()'s result). */
type EmbedWindow = Window & { editor?: { ready: Promise<void>; destroy(): Promise<void> } };

describe('browser: the embed bundles', function () {
  this.timeout(60_000);
  const fx = useBrowserFixture('embed', { '/module.html': MODULE_PAGE });

  it('the script-tag bundle loads in a plain HTML page and collaborates with the ES module build', async () => {
    const doc = `embed-${process.pid}`;
    const query = (name: string): string => new URLSearchParams({ server: fx.server.url, doc, name }).toString();
    const [alice, bob] = await Promise.all([fx.launch('Alice'), fx.launch('Bob')]);
    // demo/embed.html is the shipped example: <script src="/tandem-embed.js"> and Tandem.mount().
    await Promise.all([
      alice.page.goto(`${fx.demo.url}/embed.html?${query('Alice')}`),
      bob.page.goto(`${fx.demo.url}/module.html?${query('Bob')}`),
    ]);
    await Promise.all([
      alice.page.evaluate(() => (window as unknown as EmbedWindow).editor!.ready),
      bob.page.evaluate(() => (window as unknown as EmbedWindow).editor!.ready),
    ]);
    assert.equal(await alice.page.evaluate(() => typeof (window as unknown as { Tandem?: { mount?: unknown } }).Tandem?.mount), 'function');

    await alice.page.click('.cm-content');
    await alice.page.keyboard.type('Hello from a script tag. ');
    await bob.page.click('textarea.tandem-field');
    await bob.page.keyboard.press('End');
    await bob.page.keyboard.type('And from an ES module.');

    const shown = async (user: User): Promise<string> =>
      user.page.evaluate(() => {
        const cm = document.querySelector('.cm-content') as HTMLElement | null;
        const field = document.querySelector('textarea.tandem-field') as HTMLTextAreaElement | null;
        // CodeMirror renders one div per line.
        return field ? field.value : Array.from(cm?.querySelectorAll('.cm-line') ?? [], (line) => line.textContent).join('\n');
      });
    const final = await waitFor<string | null>(
      async () => {
        const snapshot = (await serverSnapshot(fx.server, 'embed', doc)).data as { text?: string } | undefined;
        const [a, b] = await Promise.all([shown(alice), shown(bob)]);
        return snapshot?.text !== undefined && a === snapshot.text && b === snapshot.text && snapshot.text.length === 47
          ? snapshot.text
          : null;
      },
      { timeoutMs: 20_000, what: 'both embeds and the server to agree' },
    );
    assert.ok(final?.includes('Hello from a script tag. '), final ?? '');
    assert.ok(final?.includes('And from an ES module.'), final ?? '');

    // destroy() removes the editor and lets go of the document and the connection.
    await alice.page.evaluate(() => (window as unknown as EmbedWindow).editor!.destroy());
    assert.equal(await alice.page.evaluate(() => document.querySelector('.tandem-embed')), null);
  });
});

describe('demo assets over HTTP', function () {
  let demo: StaticServer;
  before(async function () {
    this.timeout(60_000);
    demo = await startDemoServer(await buildBundles());
  });
  after(() => demo.close());

  const get = async (path: string, method = 'GET'): Promise<{ status: number; type: string | null; body: string }> => {
    const res = await fetch(demo.url + path, { method });
    return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
  };

  it('serves the demo page at / and the bundles with their content types', async () => {
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.match(page.type!, /^text\/html/);
    assert.match(page.body, /<script src="\/demo\/demo.js">/);
    for (const [path, type] of [
      ['/demo/demo.js', /^text\/javascript/],
      ['/demo/demo.css', /^text\/css/],
      ['/demo/demo.js.map', /^application\/json/],
      ['/embed.html', /^text\/html/],
      ['/tandem-embed.js', /^text\/javascript/],
      ['/tandem-embed.mjs', /^text\/javascript/],
    ] as const) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.match(res.type!, type, path);
    }
    const head = await get('/tandem-embed.js', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  it('answers 404 for unknown files and paths that leave the folder, 405 for other methods', async () => {
    for (const path of [
      '/demo/nope.js',
      '/demo/',
      '/demo/%2e%2e/%2e%2e/package.json',
      '/demo/..%2f..%2fpackage.json',
      '/tandem-embed.jsx',
    ]) {
      assert.equal((await get(path)).status, 404, path);
    }
    assert.equal((await get('/', 'POST')).status, 405);
  });
});
