import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('tandem serve (the built package bin)', function () {
  this.timeout(60_000);
  let dir: string;
  let server: ServerProcess | null = null;

  before(() => {
    execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--if-needed'], { cwd: ROOT, stdio: 'pipe' });
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
  });
  afterEach(async () => {
    await server?.kill();
    server = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves /healthz, /readyz and / with flags mirroring the variables, and exits 0 on SIGTERM', async () => {
    server = await startServerProcess({}, { entry: 'bin', args: ['--port', '0', '--db-url', `sqlite:${join(dir, 'sub', 't.db')}`] });
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(((await ready.json()) as { checks: unknown }).checks, { store: 'ok', pubsub: 'ok' });
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Tandem/);
    assert.equal((await fetch(`${server.url}/nope`)).status, 404);
    assert.equal(await server.stop(), 0);
    assert.ok(server.logs.some((l) => l.msg === 'tandem stopped'));
  });

  it('refuses a bad configuration with a coded error and exit 1', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'bin/tandem.js'), 'serve', '--port', 'eighty'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /TANDEM_BAD_CONFIG: PORT must be an integer/);
    const badDb = spawnSync(process.execPath, [join(ROOT, 'bin/tandem.js'), 'serve', '--port', '0', '--db-url', 'postgres://x'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(badDb.status, 1);
    assert.match(badDb.stderr, /TANDEM_BAD_CONFIG: Unsupported DB_URL scheme postgres:/);
  });
});
