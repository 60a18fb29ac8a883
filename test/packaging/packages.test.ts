/**
 * The packages as a user gets them: `npm pack` each (which runs its `prepack` build), install
 * the tarballs into scratch projects outside the repository, then
 *  (a) a strict TypeScript Node application (fixtures/node-app) type-checks against the
 *      installed declarations and runs: @tandem/server embedded, two @tandem/client/node clients;
 *  (b) a React page (fixtures/web-app) built with Vite and, separately, with esbuild from the
 *      installed @tandem/client, neither configured with an alias or a shim, collaborates in
 *      Chromium (one page from each build);
 *  (c) the browser app's installed tree holds none of the server's dependencies.
 * Installs use npm's cache (`--prefer-offline`), filled by the repository's own `npm ci`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import { waitFor } from '../helpers/wait.js';
import { chromiumAvailable, launchUser, ROOT, serveHttp, Teardown, type StaticServer, type User } from '../browser/helpers-browser.js';

const FIXTURES = join(ROOT, 'test/packaging/fixtures');

/** Packages only the server needs: none may reach a browser app's install. */
const SERVER_ONLY = [
  '@tandem/server',
  'libsql',
  'mongodb',
  'pg',
  'redis',
  'socket.io',
  'pino',
  'esbuild',
  'playwright-core',
  'sharedb-mongo',
  'sharedb-redis-pubsub',
  'sharedb-milestone-mongo',
  'commander',
  'jose',
  'mingo',
  '@teamwork/websocket-json-stream',
  'typescript',
  'vite',
];

interface Packed {
  tarball: string;
  files: string[];
}

/** Runs a command (no shell) and returns its stdout (and stderr, when asked); rejects with its output when it fails. */
function run(command: string, args: string[], cwd: string, timeoutMs = 180_000, withStderr = false): Promise<string> {
  // npm passes its own npm_* settings to scripts; a nested npm must not inherit them.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(withStderr ? `${stdout}\n${stderr}` : stdout);
    });
  });
}

async function pack(into: string, workspace: string | null): Promise<Packed> {
  const args = ['pack', '--json', '--pack-destination', into, ...(workspace ? ['-w', workspace] : [])];
  const out = await run('npm', args, ROOT);
  // prepack's build output precedes npm's JSON report.
  const [report] = JSON.parse(out.slice(out.indexOf('\n[') + 1)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: join(into, report!.filename), files: report!.files.map((f) => f.path) };
}

/** The version of `name` installed in `dir` (the repository's by default). */
function installedVersion(name: string, dir = ROOT): string {
  return (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** A scratch project: the fixture's files and a package.json with these dependencies. */
function scratchProject(parent: string, fixture: string, dependencies: Record<string, string>): string {
  const dir = join(parent, fixture);
  cpSync(join(FIXTURES, fixture), dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: fixture, private: true, type: 'module', dependencies }, null, 2));
  return dir;
}

function npmInstall(dir: string): Promise<string> {
  return run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], dir);
}

interface LsNode {
  version?: string;
  missing?: boolean;
  dependencies?: Record<string, LsNode>;
}

/** Every installed package in `npm ls --all --json` output (an optional peer nobody installed is listed as missing). */
function treeNames(node: LsNode, names = new Set<string>()): Set<string> {
  for (const [name, child] of Object.entries(node.dependencies ?? {})) {
    if (child.missing || child.version === undefined) continue;
    names.add(name);
    treeNames(child, names);
  }
  return names;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css',
};

/** Serves folders as they are (`/vite/…`, `/esbuild/…`) on port 0. */
function serveFolders(roots: Record<string, string>): Promise<StaticServer> {
  return serveHttp((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const [, prefix = '', rest = ''] = /^\/([^/]+)\/?(.*)$/.exec(path) ?? [];
    const root = roots[prefix];
    const file = root ? normalize(join(root, rest || 'index.html')) : null;
    if (!root || !file?.startsWith(root) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
}

interface Shown {
  ready: boolean;
  text: string;
  pending: number;
  state: string;
  others: string;
}

function shown(page: Page): Promise<Shown> {
  return page.evaluate(() => {
    const note = document.getElementById('note');
    return {
      ready: note?.dataset.ready === 'true',
      text: note?.textContent ?? '',
      pending: Number(note?.dataset.pending ?? -1),
      state: note?.dataset.state ?? '',
      others: note?.dataset.others ?? '',
    };
  });
}

async function waitShown(user: User, test: (s: Shown) => boolean, what: string): Promise<Shown> {
  let last: Shown | null = null;
  try {
    const found = await waitFor(
      async () => {
        last = await shown(user.page);
        return test(last) ? last : null;
      },
      { timeoutMs: 15_000, what: `${user.name}: ${what}` },
    );
    assert.ok(found);
    return found;
  } catch (err) {
    throw new Error(`${(err as Error).message}; last shown: ${JSON.stringify(last)}\n${user.log.join('\n')}`);
  }
}

describe('packaging: the packed packages installed into projects outside the repository', function () {
  this.timeout(300_000);
  const teardown = new Teardown();
  let scratch = '';
  let client: Packed;
  let server: Packed;
  let webApp = '';

  before(async function () {
    scratch = mkdtempSync(join(tmpdir(), 'tandem-packages-'));
    teardown.add(async () => rmSync(scratch, { recursive: true, force: true }));
    [client, server] = [await pack(scratch, 'client'), await pack(scratch, null)];
  });

  after(() => teardown.run());

  it('packs built ESM, declarations and the CLI, and no sources or tests', () => {
    for (const file of [
      'dist/client/index.js',
      'dist/client/index.d.ts',
      'dist/client/node.js',
      'dist/client/react/index.d.ts',
      'dist/client/codemirror.js',
      'dist/client/bindings/index.js',
      'dist/client/embed.js',
      'dist/ot-types/index.js',
      'package.json',
    ]) {
      assert.ok(client.files.includes(file), `@tandem/client has ${file}`);
    }
    for (const file of [
      'dist/server.js',
      'dist/types/server/index.d.ts',
      'dist/tandem.js',
      'dist/tandem-load.js',
      'bin/tandem.js',
      'package.json',
    ]) {
      assert.ok(server.files.includes(file), `@tandem/server has ${file}`);
    }
    for (const { files } of [client, server]) {
      assert.deepEqual(
        files.filter(
          (f) => /\.test\.|^test\/|^(server|client|ot-types|load)\/.*\.ts$/.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')),
        ),
        [],
      );
    }
  });

  it('(a) a strict TypeScript Node application type-checks against the installed packages and runs a server and two clients', async () => {
    const app = scratchProject(scratch, 'node-app', {
      '@tandem/server': `file:${server.tarball}`,
      '@tandem/client': `file:${client.tarball}`,
      '@types/node': installedVersion('@types/node'),
    });
    await npmInstall(app);
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(app, 'tsconfig.json')], app);
    const result = JSON.parse((await run(process.execPath, [join(app, 'out/main.js')], app, 60_000)).trim().split('\n').pop()!) as Record<
      string,
      unknown
    >;
    assert.deepEqual(
      result.alice,
      { title: '» Hello from Node', count: 0 },
      'alice undid her count (her title was not undoable), kept bob’s text',
    );
    assert.deepEqual(result.bob, result.alice);
    assert.equal(result.undone, true);
    assert.equal(result.refusal, result.forbidden, 'the access hook refused the create');
    // The installed CLI answers.
    const version = await run(join(app, 'node_modules/.bin/tandem'), ['--version'], app, 30_000);
    assert.equal(version.trim(), installedVersion('@tandem/server', app));
  });

  it('(b, c) a React page built with Vite and with esbuild from the installed client collaborates in Chromium; no server package is installed', async function () {
    requireService(this, chromiumAvailable(), 'chromium (apt-get install chromium) for the packaged page');
    webApp = scratchProject(scratch, 'web-app', {
      '@tandem/client': `file:${client.tarball}`,
      react: installedVersion('react'),
      'react-dom': installedVersion('react-dom'),
    });
    await npmInstall(webApp);

    // (c) what a browser app installs
    const names = treeNames(JSON.parse(await run('npm', ['ls', '--all', '--json'], webApp)) as LsNode);
    assert.ok(
      names.has('socket.io-client') && names.has('sharedb') && names.has('ot-json1'),
      'the client’s own dependencies are installed',
    );
    assert.deepEqual(
      SERVER_ONLY.filter((n) => names.has(n) || existsSync(join(webApp, 'node_modules', n))),
      [],
      'no server-only package in the browser app',
    );

    // (b) two builds, no configuration beyond the entry
    const viteOutput = await run(
      process.execPath,
      [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--outDir', 'dist-vite', '--base', './', '--logLevel', 'warn'],
      webApp,
      120_000,
      true,
    );
    // Vite's one remark: ShareDB's client tries `require('util')` inside a try/catch and falls
    // back to the `inherits` package; Vite says it left `util` out. Anything else is a problem.
    const remarks = viteOutput
      .split('\n')
      .filter(
        (line) =>
          line.trim() !== '' &&
          !/Module "util" has been externalized for browser compatibility, imported by "[^"]*\/sharedb\/lib\/util\.js"/.test(line),
      );
    assert.deepEqual(remarks, [], 'Vite builds the page without other warnings');
    const esbuilt = await build({
      absWorkingDir: webApp,
      entryPoints: ['main.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      outfile: join(webApp, 'dist-esbuild/main.js'),
      // React's own requirement under esbuild (Vite defines it itself); nothing for Tandem.
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'silent',
    });
    assert.deepEqual([...esbuilt.errors, ...esbuilt.warnings], []);
    writeFileSync(
      join(webApp, 'dist-esbuild/index.html'),
      readFileSync(join(webApp, 'index.html'), 'utf8').replace('./main.ts', './main.js'),
    );

    const tandem: TestServer = await startTestServer();
    teardown.add(() => tandem.close());
    const site = await serveFolders({ vite: join(webApp, 'dist-vite'), esbuild: join(webApp, 'dist-esbuild') });
    teardown.add(() => site.close());
    const users = [await launchUser('vite', teardown.add), await launchUser('esbuild', teardown.add)];
    const [vite, esb] = users as [User, User];
    // One page after the other: the first creates the document, the second finds it.
    for (const user of users) {
      await user.page.goto(`${site.url}/${user.name}/?server=${encodeURIComponent(tandem.url)}&name=${user.name}`);
      await waitShown(user, (s) => s.ready && s.state === 'online', 'ready and online');
    }
    await waitShown(vite, (s) => s.others === 'esbuild', 'seeing the esbuild page');
    await waitShown(esb, (s) => s.others === 'vite', 'seeing the vite page');

    await vite.page.evaluate(() => (window as unknown as { typeText(t: string): void }).typeText('from Vite. '));
    await waitShown(esb, (s) => s.text === 'from Vite. ', 'the vite page’s text');
    await esb.page.evaluate(() => (window as unknown as { typeText(t: string): void }).typeText('from esbuild.'));
    for (const user of users)
      await waitShown(user, (s) => s.text === 'from Vite. from esbuild.' && s.pending === 0, 'both texts, acknowledged');
    const snapshot = await tandem.backend.connect().get('notes', 'packaged');
    await new Promise<void>((resolve, reject) => snapshot.fetch((err) => (err ? reject(err) : resolve())));
    assert.deepEqual(snapshot.data, { text: 'from Vite. from esbuild.' });
  });
});
