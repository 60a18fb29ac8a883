import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
    server = await startServerProcess({}, { entry: 'bin', args: ['--port', '0', '--db-url', `sqlite:${join(dir, 't.db')}`] });
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
    assert.match(result.stderr, /TANDEM_BAD_CONFIG: --port must be an integer/);
    const badDb = spawnSync(process.execPath, [join(ROOT, 'bin/tandem.js'), 'serve', '--port', '0', '--db-url', 'mysql://x'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(badDb.status, 1);
    assert.match(badDb.stderr, /TANDEM_BAD_CONFIG: Unsupported --db-url scheme mysql:/);
  });

  describe('commands and values in our words', function () {
    const run = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [join(ROOT, 'bin/tandem.js'), ...args], {
        encoding: 'utf8',
        timeout: 20_000,
        env: { ...process.env, ...env },
      });

    it('prints help listing every command when run without one (and starts nothing)', () => {
      const result = run([]);
      assert.equal(result.status, 0);
      for (const command of ['serve', 'token', 'load']) assert.match(result.stdout, new RegExp(`^\\s+${command}\\b`, 'm'), command);
    });

    it('prints the package version', () => {
      const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      assert.equal(run(['--version']).stdout.trim(), version);
    });

    it('suggests the closest command on a typo', () => {
      const result = run(['serv']);
      assert.equal(result.status, 1);
      assert.match(result.stderr, /unknown command 'serv'[\s\S]*Did you mean serve\?/);
    });

    it('names the flag when a flag was given and the variable when the variable was', () => {
      const flag = run(['serve', '--port', '99999']);
      assert.equal(flag.status, 1);
      assert.match(flag.stderr, /TANDEM_BAD_CONFIG: --port must be an integer from 0 to 65535, got "99999"/);
      const variable = run(['serve'], { PORT: '99999' });
      assert.equal(variable.status, 1);
      assert.match(variable.stderr, /TANDEM_BAD_CONFIG: PORT must be an integer from 0 to 65535/);
      assert.match(
        run(['serve', '--log-level', 'loud']).stderr,
        /TANDEM_BAD_CONFIG: --log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"/,
      );
      assert.match(run(['serve'], { LOG_LEVEL: 'loud' }).stderr, /TANDEM_BAD_CONFIG: LOG_LEVEL must be one of/);
      const missingDir = run(['serve', '--port', '0', '--db-url', 'sqlite:/nonexistent/dir/x.db']);
      assert.equal(missingDir.status, 1);
      assert.match(missingDir.stderr, /TANDEM_BAD_CONFIG: --db-url names a SQLite file in \/nonexistent\/dir, which does not exist/);
      assert.ok(!existsSync('/nonexistent'), 'no folder was created');
      assert.match(
        run(['serve', '--host', '0.0.0.0', '--port', '0']).stderr,
        /TANDEM_BAD_CONFIG: HOST=0\.0\.0\.0 is reachable from the network but no authentication is configured/,
      );
    });
  });
});
