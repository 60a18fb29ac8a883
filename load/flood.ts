/**
 * `npm run flood`: flood isolation. One Tandem server in its own process (SQLite, default
 * limits); the same load of well-behaved clients runs in rounds, each round once alone
 * ("base") and once while one abusive client (load/flood-attacker.ts, its own process)
 * floods ops, presence and queries in closed loops. Prints the other clients' submit→ack
 * figures per run and the flood/base p99 ratios (the resilience bound: at most 2×), and
 * writes flood.json (+ each run's load report) to --out. See BENCHMARKS.md, "Flood isolation".
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { startHostedServer, type HostedServer } from './bench/hosted-server.js';
import type { AttackerReport } from './flood-attacker.js';
import { parseDuration, parseMix, type LoadOptions } from './options.js';
import { writeReports } from './report-files.js';
import type { LoadResult } from './result.js';
import { machineInfo, runLoad } from './run-load.js';

const ATTACKER = fileURLToPath(new URL('./flood-attacker.ts', import.meta.url));
const COLLECTION = 'load';

interface FloodRun {
  label: string;
  attacked: boolean;
  ack: LoadResult['latency']['ack'];
  ackedPerSec: number;
  serverCommitsPerSec: number | null;
  failedOps: number;
  reconnects: number;
  convergence: boolean;
  attacker: AttackerReport | null;
}

/** Runs the attacker for `durationMs`; resolves with its report. */
function runAttacker(server: HostedServer, presenceDocId: string, durationMs: number, connections: number): Promise<AttackerReport> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        ATTACKER,
        server.sharedbWsUrl,
        COLLECTION,
        presenceDocId,
        String(durationMs),
        String(connections),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the attacker exited with ${code}`));
      else resolvePromise(JSON.parse(out.trim()) as AttackerReport);
    });
  });
}

function refusedTotal(counts: AttackerReport['ops']): number {
  return Object.values(counts.refused).reduce((a, b) => a + b, 0);
}

function describeAttacker(a: AttackerReport | null): string {
  if (!a) return '—';
  return (['ops', 'presence', 'queries'] as const)
    .map(
      (kind) =>
        `${kind} ${a[kind].sent.toLocaleString('en')} → ${a[kind].accepted.toLocaleString('en')} / ${refusedTotal(a[kind]).toLocaleString('en')}`,
    )
    .join(' · ');
}

function table(runs: FloodRun[]): string {
  const rows = runs.map(
    (r) =>
      `| ${r.label} | ${r.ack.p50.toFixed(2)} | ${r.ack.p99.toFixed(2)} | ${r.ack.p999.toFixed(2)} / ${r.ack.max.toFixed(2)} | ${Math.round(r.ackedPerSec)} | ` +
      `${r.serverCommitsPerSec === null ? '—' : Math.round(r.serverCommitsPerSec)} | ${r.failedOps} | ${describeAttacker(r.attacker)} |`,
  );
  return [
    '| run | ack p50 ms | ack p99 ms | p99.9 / max ms | acked ops/s | server commits/s | failed ops | attacker: sent → accepted / refused |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

const program = new Command('flood')
  .description("flood isolation: other clients' submit→ack with and without one abusive client")
  .option('--rounds <n>', 'base + flood pairs', '2')
  .option('--clients <n>', 'well-behaved clients', '50')
  .option('--docs <n>', 'documents they edit', '10')
  .option('--rate <n>', 'actions per second per client (open loop)', '5')
  .option('--duration <d>', 'measured time per run', '20s')
  .option('--warmup <d>', 'unmeasured time before it', '3s')
  .addOption(
    new Option('--attacker-connections <n>', "the attacker's connections: one for all three loops, or one per loop")
      .choices(['1', '3'])
      .default('1'),
  )
  .option('-o, --out <dir>', 'output directory (default bench-results/flood-<time>)')
  .action(
    async (flags: {
      rounds: string;
      clients: string;
      docs: string;
      rate: string;
      duration: string;
      warmup: string;
      attackerConnections: string;
      out?: string;
    }) => {
      const started = new Date();
      const outDir = resolve(flags.out ?? join('bench-results', `flood-${started.toISOString().replace(/[:.]/g, '-')}`));
      mkdirSync(outDir, { recursive: true });
      const command = `npm run flood --${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`;
      const durationMs = parseDuration(flags.duration);
      const warmupMs = parseDuration(flags.warmup);
      const rampMs = 1000;
      console.log(`[flood] ${command} → ${outDir}`);
      const server = await startHostedServer('tandem', { store: 'sqlite' });
      const runs: FloodRun[] = [];
      try {
        for (let round = 0; round < Number(flags.rounds); round++) {
          for (const attacked of [false, true]) {
            const label = `${attacked ? 'flood' : 'base'} ${round + 1}`;
            const docPrefix = `r${round}-${attacked ? 'flood' : 'base'}`;
            const options: LoadOptions = {
              urls: [server.url],
              transport: 'socketio',
              clients: Number(flags.clients),
              docs: Number(flags.docs),
              collection: COLLECTION,
              docPrefix,
              mix: parseMix('text=80,struct=15,presence=5'),
              rate: Number(flags.rate),
              durationMs,
              warmupMs,
              rampMs,
              chaosPerMin: 0,
              chaosOfflineMs: [0, 0],
              seed: 42 + round,
              workers: 1,
              allowRemote: false,
              drainTimeoutMs: 60_000,
              connectTimeoutMs: 30_000,
              progress: 'none',
              label,
              auth: null,
            };
            // The attacker starts with the load and stops after its measured window.
            const attack = attacked
              ? runAttacker(server, `${docPrefix}-0`, rampMs + warmupMs + durationMs + 2000, Number(flags.attackerConnections))
              : null;
            const result = await runLoad(options, { probe: server.probe(), command });
            const attacker = attack ? await attack : null;
            await writeReports(result, { outDir, json: join(outDir, `${docPrefix}.json`), html: join(outDir, `${docPrefix}.html`) });
            const run: FloodRun = {
              label,
              attacked,
              ack: result.latency.ack,
              ackedPerSec: result.throughput.ackedPerSec,
              serverCommitsPerSec: result.throughput.serverCommitsPerSec,
              failedOps: result.failedOps,
              reconnects: result.reconnects,
              convergence: result.convergence.passed,
              attacker,
            };
            runs.push(run);
            console.log(
              `[flood] ${label}: ack p50 ${run.ack.p50.toFixed(2)} p99 ${run.ack.p99.toFixed(2)} ms; attacker ${describeAttacker(attacker)}`,
            );
          }
        }
      } finally {
        await server.close();
      }
      const ratios = runs.filter((r) => r.attacked).map((r, i) => r.ack.p99 / runs.filter((b) => !b.attacked)[i]!.ack.p99);
      const summary = `p99 flood/base by round: ${ratios.map((x) => `${x.toFixed(2)}×`).join(', ')} (bound: 2×)`;
      console.log(`\n${table(runs)}\n\n${summary}`);
      writeFileSync(
        join(outDir, 'flood.json'),
        JSON.stringify({ command, startedAt: started.toISOString(), machine: machineInfo(), runs, ratios }, null, 2) + '\n',
      );
    },
  );

await program.parseAsync();
