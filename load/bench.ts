/**
 * `npm run bench`: the paired benchmark, Tandem vs stock ShareDB, same store (SQLite, or
 * --store memory|postgres; --stock-store memory puts stock alone on ShareDB's MemoryDB, as W6
 * always does), same clients doing the same ops, sides alternating. Prints the table with
 * Tandem/stock ratios and writes bench.json + bench.md (+ one JSON/HTML report per load run)
 * to --out.
 * See BENCHMARKS.md for the workloads and how to read the figures.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { redactUrl } from '../server/storage/postgres-connection.js';
import { machineInfo } from './run-load.js';
import { checkBenchPostgres, PG_BENCH_URL } from './bench/bench-postgres.js';
import { runSuite, type WorkloadOutcome } from './bench/run-suite.js';
import type { BenchStore } from './bench/hosted-server.js';
import { SIDES, WORKLOAD_IDS, type WorkloadId } from './bench/suite.js';
import { benchTable, failuresOf, machineLine } from './bench/table.js';

function freeMemory(): string {
  try {
    const line = execFileSync('free', ['-h'], { encoding: 'utf8' }).split('\n')[1] ?? '';
    const cols = line.trim().split(/\s+/);
    return ` (free -h: total ${cols[1]}, available ${cols[6]})`;
  } catch {
    return '';
  }
}

const program = new Command('bench')
  .description('paired benchmark: Tandem vs stock ShareDB (W1–W6)')
  .option('--smoke', 'tiny sizes and short phases (CI smoke run, a few minutes)', false)
  .option('--scale <f>', 'multiply client/connection/op counts (default 1, smoke 0.02)')
  .option(
    '--only <ids>',
    `comma-separated workloads (${WORKLOAD_IDS.join(',')}; W6: document-size sweep, text of 0 / 128 KB / 1 MB, with SDK and stock client cost per remote op)`,
  )
  .option(
    '--sides <names>',
    `comma-separated sides (${Object.keys(SIDES).join(', ')}; tandem-auth: Tandem with authentication)`,
    'tandem,stock',
  )
  .option('--rounds <n>', 'rounds per workload, sides alternating (default: W1–W3 and W6 2, W4–W5 1)')
  .addOption(
    new Option(
      '--store <kind>',
      'store for both sides (postgres: PG_BENCH_URL, default postgres://postgres@127.0.0.1:5432/test, a fresh schema per server, dropped after it)',
    )
      .choices(['sqlite', 'memory', 'postgres'])
      .default('sqlite'),
  )
  .addOption(
    new Option(
      '--stock-store <kind>',
      "stock ShareDB's store in W1–W5: same as --store, or memory (ShareDB's MemoryDB, not durable); W6 always runs stock on memory",
    )
      .choices(['same', 'memory'])
      .default('same'),
  )
  .option('-o, --out <dir>', 'output directory (default bench-results/<time>)')
  .option('--cpu-prof', 'write server CPU profiles (.cpuprofile) into the output directory', false)
  .option(
    '--server-node-arg <flag>',
    'a Node or V8 option for every server process, e.g. --server-node-arg=--trace-gc (repeatable)',
    (flag: string, all: string[]) => [...all, flag],
    [] as string[],
  )
  .addOption(new Option('--progress <mode>', 'live progress').choices(['auto', 'bar', 'lines', 'none']).default('lines'))
  .option('--table-from <bench.json>', 'print the table of an earlier run (its bench.json) and exit')
  .action(
    async (flags: {
      tableFrom?: string;
      smoke: boolean;
      scale?: string;
      only?: string;
      sides: string;
      rounds?: string;
      store: BenchStore;
      stockStore: 'same' | 'memory';
      out?: string;
      cpuProf: boolean;
      serverNodeArg: string[];
      progress: 'auto' | 'bar' | 'lines' | 'none';
    }) => {
      if (flags.tableFrom) {
        const saved = JSON.parse(readFileSync(flags.tableFrom, 'utf8')) as { outcomes: WorkloadOutcome[] };
        const names = [...new Set(saved.outcomes.flatMap((o) => Object.keys(o.runs)))];
        console.log(benchTable(saved.outcomes, names));
        return;
      }
      const factor = flags.scale !== undefined ? Number(flags.scale) : flags.smoke ? 0.02 : 1;
      if (!(factor > 0 && factor <= 1)) throw new Error('--scale must be in (0, 1]');
      const workloads = (flags.only ?? WORKLOAD_IDS.join(',')).split(',').map((s) => s.trim().toUpperCase()) as WorkloadId[];
      for (const w of workloads) if (!WORKLOAD_IDS.includes(w)) throw new Error(`unknown workload ${w}`);
      const sides = flags.sides.split(',').map((s) => {
        const side = SIDES[s.trim()];
        if (!side) throw new Error(`unknown side ${s} (${Object.keys(SIDES).join(', ')})`);
        return side;
      });
      // Fail before any server starts, naming the URL (password redacted), when it does not answer.
      if (flags.store === 'postgres') await checkBenchPostgres();
      const tandemStore = flags.store === 'postgres' ? `postgres (${redactUrl(PG_BENCH_URL)}, a fresh schema per server)` : flags.store;
      const storeText =
        (flags.stockStore === 'memory' && flags.store !== 'memory' ? `${tandemStore}, stock on memory` : tandemStore) +
        (workloads.includes('W6') ? ' (W6: stock on memory)' : '');
      const started = new Date();
      const outDir = resolve(flags.out ?? join('bench-results', started.toISOString().replace(/[:.]/g, '-')));
      mkdirSync(outDir, { recursive: true });
      const command = `npm run bench --${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`;
      console.log(`[bench] ${command} → ${outDir}`);
      const outcomes = await runSuite({
        workloads,
        sides,
        scale: { factor, smoke: flags.smoke },
        rounds: flags.rounds === undefined ? null : Number(flags.rounds),
        store: flags.store,
        stockStore: flags.stockStore,
        outDir,
        progress: flags.progress,
        cpuProfDir: flags.cpuProf ? outDir : undefined,
        serverNodeArgs: flags.serverNodeArg,
        log: (line) => console.log(line),
      });
      const minutes = ((Date.now() - started.getTime()) / 60_000).toFixed(1);
      const machine = machineInfo();
      const table = benchTable(
        outcomes,
        sides.map((s) => s.name),
      );
      const failures = failuresOf(outcomes);
      const md = [
        `Machine: ${machineLine(machine, freeMemory())}`,
        `Command: \`${command}\` — started ${started.toISOString()}, took ${minutes} min, store ${storeText}, scale ${factor}${flags.smoke ? ' (smoke)' : ''}`,
        '',
        table,
        '',
        failures.length ? `Failures:\n${failures.map((f) => `- ${f}`).join('\n')}` : 'Every run converged.',
      ].join('\n');
      writeFileSync(join(outDir, 'bench.md'), md + '\n');
      writeFileSync(
        join(outDir, 'bench.json'),
        JSON.stringify(
          {
            command,
            startedAt: started.toISOString(),
            minutes: Number(minutes),
            machine,
            store: storeText,
            factor,
            smoke: flags.smoke,
            outcomes,
          },
          null,
          2,
        ) + '\n',
      );
      console.log('\n' + md);
      process.exitCode = failures.length ? 1 : 0;
    },
  );

await program.parseAsync(process.argv);
