/**
 * A workload's own settings for Tandem's server (LoadWorkload.tandemEnv) win over the bench's
 * environment: W2's writers are not held by OPS_PER_MINUTE, which stock ShareDB does not have.
 * The bench runs with a budget of 60 ops a minute per connection in its environment, which
 * would refuse nearly every op of W2's writers if it reached the server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTsxScript } from '../helpers/run-script.js';

interface RoundReport {
  errors: Record<string, number>;
  failedOps: number;
  server: { commits: number; rejected: number };
  convergence: { converged: boolean };
}

describe('bench: a workload sets its own Tandem settings', function () {
  this.timeout(120_000);

  it("W2's writers are not refused by the environment's OPS_PER_MINUTE", async () => {
    const out = mkdtempSync(join(tmpdir(), 'tandem-bench-env-'));
    try {
      const { code, stdout, stderr } = await runTsxScript(
        'load/bench.ts',
        ['--smoke', '--only', 'W2', '--scale', '0.2', '--rounds', '1', '--sides', 'tandem-ws', '--progress', 'none', '--out', out],
        110_000,
        { OPS_PER_MINUTE: '60' },
      );
      assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`);
      const report = JSON.parse(readFileSync(join(out, 'W2-tandem-ws.json'), 'utf8')) as RoundReport;
      assert.deepEqual(report.errors, {}, 'errors the writers were answered with');
      assert.equal(report.server.rejected, 0);
      assert.ok(report.server.commits > 60, `${report.server.commits} commits`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
