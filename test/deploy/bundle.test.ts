/**
 * What the Docker image runs, without Docker: the esbuild bundle (`npm run build`, built
 * here when missing or stale) started exactly as the image's CMD does, `node bin/tandem.js
 * serve`, configured by environment only. It must listen, be ready, and drain on SIGTERM.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('deploy: the built bundle, started as the image starts it', function () {
  this.timeout(60_000);
  let child: ChildProcess | null = null;

  before(() => {
    execFileSync(process.execPath, ['scripts/build.mjs', '--if-needed'], { cwd: ROOT, stdio: 'ignore' });
  });
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    child = null;
  });

  it('`node bin/tandem.js serve` listens, reports ready, and exits 0 on SIGTERM', async () => {
    child = spawn(process.execPath, ['bin/tandem.js', 'serve'], {
      cwd: ROOT,
      // As the image: configuration by environment only (memory: keeps the test stateless).
      env: { ...process.env, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', DB_URL: 'memory:', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const messages: string[] = [];
    let url = '';
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg: string; url?: string };
        messages.push(entry.msg);
        if (entry.msg === 'tandem listening') url = entry.url!;
      } catch {
        // not a log line
      }
    });
    const proc = child;
    await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}`);
        return url;
      },
      { timeoutMs: 30_000, what: 'the bundle listening' },
    );

    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, 'ready');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);

    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    assert.ok(messages.includes('draining') && messages.includes('tandem stopped'), messages.join(', '));
  });
});
