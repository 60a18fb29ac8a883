/**
 * Smoke run of the benchmark on PostgreSQL (`npm run bench -- --store postgres`): W2 at tiny
 * size against Tandem and stock ShareDB, both on our PostgreSQL adapter, each server in a
 * schema of its own. It must finish, converge, print retries per commit for both sides, and
 * leave no schema behind. No speed is asserted (this machine is shared). Uses PG_TEST_URL
 * (passed to the bench as PG_BENCH_URL); skipped without PostgreSQL, failed when CI=true.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PG_TEST_URL, postgresUnavailable } from '../helpers/postgres.js';
import { requireService } from '../helpers/skip.js';
import { runTsxScript } from '../helpers/run-script.js';

const runBench = (args: string[], timeoutMs: number) => runTsxScript('load/bench.ts', args, timeoutMs, { PG_BENCH_URL: PG_TEST_URL });

/** Schemas whose name starts with `prefix`. */
async function schemasNamed(prefix: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: PG_TEST_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)', [prefix]);
    return rows.map((r) => r.nspname);
  } finally {
    await client.end();
  }
}

describe('benchmark smoke run on PostgreSQL (--store postgres)', function () {
  this.timeout(120_000);

  before(async function () {
    const reason = await postgresUnavailable();
    requireService(this, reason === null, reason ?? '');
  });

  it('runs W2 against Tandem and stock ShareDB on PostgreSQL, prints retries per commit for both, and drops its schemas', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tandem-bench-pg-'));
    try {
      const { pid, code, stdout, stderr } = await runBench(
        ['--store', 'postgres', '--smoke', '--only', 'W2', '--scale', '0.1', '--rounds', '1', '--progress', 'none', '--out', out],
        110_000,
      );
      assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`);
      assert.match(stdout, /store postgres \(postgres:\/\/[^)]*, a fresh schema per server\)/);
      assert.match(stdout, /\| W2 \| committed ops\/s \(server\) \| [\d,]+ \| [\d,]+ \| [\d.]+×/);
      // Tandem queues a document's submits; stock ShareDB retries them against each other.
      assert.match(stdout, /\| {2}\| retries per commit \| \d+\.\d{3} \| \d+\.\d{3} \|/);
      assert.match(stdout, /Every run converged/);
      const bench = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as {
        store: string;
        outcomes: Array<{ id: string; runs: Record<string, Array<{ converged: boolean; figures: Record<string, number | null> }>> }>;
      };
      assert.match(bench.store, /^postgres /);
      const [w2] = bench.outcomes;
      assert.equal(w2?.id, 'W2');
      for (const side of ['tandem', 'stock']) {
        const [run] = w2.runs[side] ?? [];
        assert.equal(run?.converged, true, `${side} converged`);
        assert.equal(typeof run.figures.retriesPerCommit, 'number', `${side}: retries per commit measured`);
        assert.ok((run.figures.commitsPerSec ?? 0) > 0, `${side} committed`);
      }
      // One schema per server (two here), each dropped once its server closed.
      assert.deepEqual(await schemasNamed(`tandem_bench_${pid}_`), []);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
