/**
 * Smoke runs of the load tool and the benchmark on tiny sizes: they must finish, converge,
 * and write well-formed reports. No speed is asserted (this machine is shared).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHART_IDS } from '../../load/report-html.js';
import type { LoadResult } from '../../load/result.js';
import { fmtLatency, latencyNote } from '../../load/summary.js';
import { AUTH_ENV, TEST_JWT_SECRET } from '../helpers/auth.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { runTsxScript } from '../helpers/run-script.js';

const run = (script: string, args: string[], timeoutMs: number, env: Record<string, string> = {}) =>
  runTsxScript(script, args, timeoutMs, env);

describe('load tool smoke run', function () {
  this.timeout(90_000);
  let server: TestServer;
  let dir: string;

  before(async () => {
    server = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'tandem-load-smoke-'));
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drives clients with chaos through two workers, converges, and writes JSON + HTML reports', async () => {
    const json = join(dir, 'run.json');
    const html = join(dir, 'run.html');
    const { code, stdout, stderr } = await run(
      'load/cli.ts',
      [
        ...['--url', server.url, '--clients', '8', '--docs', '2', '--workers', '2', '--rate', '5'],
        ...['--mix', 'text=60,struct=30,presence=10', '--duration', '2s', '--warmup', '1s', '--ramp', '200ms'],
        ...['--chaos', '20', '--chaos-offline', '50-300', '--seed', '7', '--json', json, '--html', html, '--progress', 'lines'],
      ],
      60_000,
    );
    assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`);
    assert.match(stdout, /convergence: PASS/);
    assert.match(stderr, /\[load\] phase measure/, 'progress lines on a non-TTY stderr');
    // Progress counts each phase on its own: the 2 s measured window ends at 2/2 s (it read
    // 3/3 s, warm-up included, before).
    assert.match(stderr, /\[load\] warmup 1\/1s /);
    assert.match(stderr, /\[load\] measure 2\/2s /);
    assert.doesNotMatch(stderr, /\d\/3s /);

    const result = JSON.parse(readFileSync(json, 'utf8')) as LoadResult;
    assert.equal(result.tool, 'tandem-load');
    assert.equal(result.passed, true, result.failures.join('; '));
    assert.equal(result.convergence.passed, true);
    assert.equal(result.convergence.clientsChecked, 8);
    assert.equal(result.convergence.docsChecked, 2);
    assert.equal(result.convergence.divergent, 0);
    assert.equal(result.setup.connected, 8);
    assert.ok(result.latency.ack.count > 0, 'acks measured');
    for (const key of ['p50', 'p90', 'p99', 'p999', 'max'] as const) assert.equal(typeof result.latency.ack[key], 'number');
    assert.ok(
      result.timeline.some((p) => p.phase === 'measure'),
      'timeline has measured slots',
    );
    assert.equal(typeof result.server.commits, 'number', 'server figures from /metrics');
    assert.equal(typeof result.errors, 'object');
    assert.ok(result.histogram.floorsMs.length === result.histogram.ack.length);
    // GET /metrics has no event-loop delay: the series is left out, not filled with nulls.
    assert.ok(
      result.timeline.every((p) => !('serverLoopDelayP99Ms' in p)),
      'no server loop-delay series',
    );

    const page = readFileSync(html, 'utf8');
    for (const id of CHART_IDS) assert.ok(page.includes(`id="${id}"`), `chart container ${id}`);
    assert.ok(page.includes('uPlot'), 'uPlot inlined');
    assert.ok(page.includes(`<p class="note" id="latency-note">${latencyNote(result)}</p>`), 'the note says what the latency rows measure');
    assert.ok(!page.includes(fmtLatency(result.latency.ack)), 'and does not repeat the ack row');
    assert.ok(!/<script[^>]+src=/i.test(page) && !/<link[^>]+href=/i.test(page), 'no external resources');
  });

  it('exits 2 on a non-loopback target without --allow-remote', async () => {
    const { code, stderr } = await run('load/cli.ts', ['--url', 'http://192.0.2.1:8080', '--clients', '1', '--progress', 'none'], 30_000);
    assert.equal(code, 2);
    assert.match(stderr, /allow-remote/);
  });
});

describe('load tool smoke run against a server with authentication', function () {
  this.timeout(90_000);
  let server: TestServer;
  let dir: string;

  before(async () => {
    server = await startTestServer(AUTH_ENV);
    dir = mkdtempSync(join(tmpdir(), 'tandem-load-auth-'));
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const runs: Array<{ transport: string; url: () => string; args: string[]; env: Record<string, string> }> = [
    // SDK clients (getToken), the secret from the variable; stock clients (?token=), from the flag.
    { transport: 'socketio', url: () => server.url, args: [], env: { LOAD_JWT_SECRET: TEST_JWT_SECRET } },
    {
      transport: 'sharedb-ws',
      url: () => server.url.replace(/^http/, 'ws') + '/sharedb',
      args: ['--jwt-secret', TEST_JWT_SECRET],
      env: {},
    },
  ];
  for (const { transport, url, args, env } of runs) {
    it(`signs a token per client over ${transport}, converges, reads /metrics with a token, and reports no secret`, async () => {
      const json = join(dir, `${transport}.json`);
      const html = join(dir, `${transport}.html`);
      const { code, stdout, stderr } = await run(
        'load/cli.ts',
        [
          ...['--url', url(), '--transport', transport, '--clients', '6', '--docs', '2', '--workers', '1', '--rate', '5'],
          ...[
            '--mix',
            'text=80,struct=20',
            '--duration',
            '2s',
            '--warmup',
            '500ms',
            '--ramp',
            '200ms',
            '--chaos',
            '20',
            '--chaos-offline',
            '50-300',
          ],
          ...['--jwt-claims', '{"role":"editor"}', '--json', json, '--html', html, '--progress', 'none', ...args],
        ],
        60_000,
        env,
      );
      assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`);
      const result = JSON.parse(readFileSync(json, 'utf8')) as LoadResult;
      assert.equal(result.convergence.passed, true, result.failures.join('; '));
      assert.equal(result.setup.connected, 6);
      assert.ok(result.latency.ack.count > 0, 'acks measured');
      assert.equal(typeof result.server.commits, 'number', '/metrics read with a token');
      assert.deepEqual(result.options.auth, { claims: { role: 'editor' } });
      for (const file of [json, html]) assert.ok(!readFileSync(file, 'utf8').includes(TEST_JWT_SECRET), `no secret in ${file}`);
    });
  }
});

describe('benchmark smoke run', function () {
  this.timeout(150_000);

  it('runs W2 and W5 against Tandem, Tandem with authentication and stock ShareDB and prints the ratio table', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tandem-bench-smoke-'));
    try {
      const { code, stdout, stderr } = await run(
        'load/bench.ts',
        [
          '--smoke',
          '--only',
          'W2,W5',
          '--scale',
          '0.1',
          '--rounds',
          '1',
          '--sides',
          'tandem,tandem-auth,stock',
          '--progress',
          'none',
          '--out',
          out,
        ],
        140_000,
      );
      assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`);
      assert.match(stdout, /\| W2 \| committed ops\/s \(server\) \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d.]+×/);
      assert.match(stdout, /\| W5 \| catch-up median ms/);
      assert.match(stdout, /Every run converged/);
      const bench = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as {
        outcomes: Array<{ id: string; runs: Record<string, Array<{ converged: boolean }>> }>;
      };
      assert.deepEqual(
        bench.outcomes.map((o) => o.id),
        ['W2', 'W5'],
      );
      for (const o of bench.outcomes)
        assert.deepEqual(
          o.runs['tandem-auth']?.map((r) => r.converged),
          [true],
          `${o.id} tandem-auth`,
        );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('flood isolation smoke run (npm run flood)', function () {
  this.timeout(120_000);

  it('runs base and flood with an attacker on three connections; the attacker is refused past its budgets, the others lose nothing', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tandem-flood-smoke-'));
    try {
      const { code, stdout, stderr } = await run(
        'load/flood.ts',
        ['--rounds', '1', '--clients', '5', '--docs', '2', '--duration', '3s', '--warmup', '1s', '--attacker-connections', '3', '-o', out],
        110_000,
      );
      assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`);
      assert.match(stdout, /p99 flood\/base by round: [\d.]+× \(bound: 2×\)/);
      type Counts = { sent: number; accepted: number; refused: Record<string, number> };
      const flood = JSON.parse(readFileSync(join(out, 'flood.json'), 'utf8')) as {
        runs: Array<{
          label: string;
          failedOps: number;
          convergence: boolean;
          attacker: Record<'ops' | 'presence' | 'queries', Counts> | null;
        }>;
      };
      assert.deepEqual(
        flood.runs.map((r) => r.label),
        ['base 1', 'flood 1'],
      );
      for (const r of flood.runs) {
        assert.equal(r.failedOps, 0, r.label);
        assert.ok(r.convergence, r.label);
      }
      const attacker = flood.runs[1]!.attacker!;
      // Presence past its burst and rate (≈ 60 + 30/s) within the ~7 s of the attack.
      assert.ok(
        attacker.presence.accepted > 0 && (attacker.presence.refused.TANDEM_RATE_LIMITED ?? 0) > 0,
        JSON.stringify(attacker.presence),
      );
      assert.ok(attacker.ops.accepted > 0 && attacker.queries.accepted > 0, JSON.stringify(attacker));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
