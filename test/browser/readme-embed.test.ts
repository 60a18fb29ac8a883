/**
 * The README's embed snippets, verbatim (only the server URL replaced by this test's), in
 * plain pages served from another origin than the Tandem server's: a classic script tag and
 * an ES module. Both must mount and collaborate on the document they name.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import { waitFor } from '../helpers/wait.js';
import { chromiumAvailable, launchUser, ROOT, Teardown } from './helpers-browser.js';
import { serverSnapshot } from './helpers-page.js';

/** The ```html blocks of README's "Editor bindings and embedding" section. */
function readmeEmbedSnippets(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('### Editor bindings and embedding');
  const section = readme.slice(start, readme.indexOf('\n### ', start + 1));
  return [...section.matchAll(/```html\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

async function servePage(html: string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>\n${html}</body></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('browser: the README embed snippets, verbatim, from another origin', function () {
  this.timeout(60_000);
  const teardown = new Teardown();
  let server: TestServer;

  before(function () {
    requireService(this, chromiumAvailable(), 'Debian chromium at /usr/bin/chromium (apt-get install chromium)');
    // The server serves the embed bundles from dist/ (npm run build; npm start builds them too).
    execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--if-needed'], { cwd: ROOT, stdio: 'pipe' });
  });
  beforeEach(async () => {
    server = await startTestServer();
    teardown.add(() => server.close());
  });
  afterEach(() => teardown.run());

  it('the script-tag and the ES-module snippets mount and edit the same document', async () => {
    const snippets = readmeEmbedSnippets();
    assert.equal(snippets.length, 2, 'two embed snippets in README');
    const users = [];
    for (const [i, snippet] of snippets.entries()) {
      assert.match(snippet, /http:\/\/localhost:8080/);
      const page = await servePage(snippet.replaceAll('http://localhost:8080', server.url));
      teardown.add(() => page.close());
      assert.notEqual(new URL(page.url).origin, new URL(server.url).origin);
      const user = await launchUser(`snippet-${i}`, teardown.add);
      await user.page.goto(page.url);
      users.push(user);
    }
    const [classic, module] = users as [(typeof users)[0], (typeof users)[0]];
    await waitFor(async () => (await classic.page.$('#editor .cm-content')) !== null, { what: 'the script-tag editor' });
    await waitFor(async () => (await module.page.$('#editor .cm-content')) !== null, { what: 'the module editor' });
    await classic.page.click('#editor .cm-content');
    await classic.page.keyboard.type('from a script tag');
    await waitFor(
      async () => ((await serverSnapshot(server, 'notes', 'n1')).data as { body?: string } | undefined)?.body === 'from a script tag',
      { what: 'the edit on the server' },
    );
    await waitFor(
      async () =>
        (await module.page.evaluate(() => document.querySelector('#editor .cm-content')?.textContent ?? '')) === 'from a script tag',
      { what: 'the module page to show it' },
    );
    for (const user of users)
      assert.deepEqual(
        user.log.filter((l) => /error/i.test(l)),
        [],
        `${user.name}: page errors`,
      );
  });
});
