/**
 * Smoke run of the benchmark's document-size sweep (`npm run bench -- --only W6`): every size
 * (empty, 128 KB, 1 MB) against Tandem and stock ShareDB, with short phases and 3 writers.
 * It must finish by itself, converge, commit on both sides at every size, report positive
 * figures (server CPU per op, subscriber CPU per remote op), and leave no process behind.
 * No speed is asserted (this machine is shared).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SideOutcome } from '../../load/bench/metrics.js';
import { runTsxScript } from '../helpers/run-script.js';

/** Set for the bench only; its server hosts and subscriber processes inherit it. */
const TAG_VARIABLE = 'TANDEM_W6_SMOKE_TAG';

/** Processes whose environment carries `tag` (the bench's children, wherever they were re-parented). */
function processesTagged(tag: string): number[] {
  const needle = `${TAG_VARIABLE}=${tag}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours
    }
  }
  return pids;
}

const runBench = (args: string[], tag: string, timeoutMs: number) =>
  runTsxScript('load/bench.ts', args, timeoutMs, { [TAG_VARIABLE]: tag });

describe('benchmark smoke run: document-size sweep (W6)', function () {
  this.timeout(200_000);
  const tag = randomBytes(8).toString('hex');

  after(() => {
    // A run that timed out leaves its children: end them (only the ones this test started).
    for (const pid of processesTagged(tag)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  it('measures every size on Tandem and stock ShareDB, with SDK and stock subscribers, and leaves no process', async function () {
    if (process.platform !== 'linux') this.skip();
    const out = mkdtempSync(join(tmpdir(), 'tandem-bench-w6-'));
    try {
      const { code, stdout, stderr } = await runBench(
        ['--smoke', '--only', 'W6', '--rounds', '1', '--progress', 'none', '--out', out],
        tag,
        180_000,
      );
      assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`);
      assert.match(stdout, /\| W6 \| empty: committed ops\/s \(server\) \| [\d,]+ \| [\d,]+ \| [\d.]+×/);
      assert.match(stdout, /\| {2}\| 1 MB: subscriber CPU µs per remote op [^|]*\| [\d,.]+ \| [\d,.]+ \|/);
      assert.match(stdout, /\| {2}\| server CPU per op, 1 MB ÷ empty \| [\d.]+ \| [\d.]+ \|/);
      assert.match(stdout, /Every run converged/);
      assert.match(stdout, /\(W6: stock on memory\)/);

      const bench = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as {
        outcomes: Array<{ id: string; runs: Record<string, SideOutcome[]> }>;
      };
      const [w6] = bench.outcomes;
      assert.equal(w6?.id, 'W6');
      for (const side of ['tandem', 'stock']) {
        const [run] = w6.runs[side] ?? [];
        assert.ok(run, `${side} ran`);
        assert.equal(run.converged, true, `${side} converged`);
        assert.equal(run.error, null, `${side}: ${run.error}`);
        assert.deepEqual(
          run.docSizeSweep?.map((p) => p.size),
          ['empty', '128k', '1m'],
        );
        for (const p of run.docSizeSweep ?? []) {
          const what = `${side} ${p.size}`;
          assert.equal(p.writers, 3, what);
          assert.ok(p.commits > 0 && p.commitsPerSec > 0, `${what}: committed`);
          assert.ok((p.serverCpuMicrosPerOp ?? 0) > 0, `${what}: server CPU per op`);
          assert.ok(p.ack.count > 0 && p.ack.p99 > 0, `${what}: acks measured`);
          assert.deepEqual(p.errors, {}, `${what}: no submit errors`);
          assert.equal(p.subscriber?.client, side === 'tandem' ? 'sdk' : 'stock', what);
          assert.ok((p.subscriber?.remoteOps ?? 0) > 0 && (p.subscriber?.cpuMicrosPerOp ?? 0) > 0, `${what}: subscriber`);
        }
        for (const key of ['serverCpuGrowth', 'subscriberCpuGrowth']) assert.ok((run.figures[key] ?? 0) > 0, `${side} ${key}`);
      }
      // Every server host and subscriber process ended with the bench.
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.deepEqual(processesTagged(tag), []);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
