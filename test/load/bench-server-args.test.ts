/** The bench's `--server-node-arg`: Node and V8 options reach the server process under measure. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('bench: --server-node-arg', function () {
  this.timeout(60_000);

  it('starts the server process with the given Node options', function () {
    if (!existsSync('/proc/self/cmdline')) {
      console.warn('SKIPPED: no /proc to read the server command line from');
      this.skip();
    }
    // In a process of its own: the host is started as the bench starts it (ESM, tsx's loader).
    const child = `
      import { readFileSync } from 'node:fs';
      import { startHostedServer } from './load/bench/hosted-server.ts';
      const host = await startHostedServer('stock', { store: 'memory', nodeArgs: ['--max-semi-space-size=4', '--stack-size=900'] });
      try {
        console.log(JSON.stringify(readFileSync('/proc/' + host.pid + '/cmdline', 'utf8').split('\\0')));
      } finally {
        await host.close();
      }
    `;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 50_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const args = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as string[];
    assert.ok(args.includes('--max-semi-space-size=4') && args.includes('--stack-size=900'), args.join(' '));
  });
});
