/**
 * Runs the suite: each workload against each side on a fresh server process (fresh SQLite
 * file), sides alternating in order from one workload (and round) to the next so slow drift
 * of a shared machine does not favour one side.
 */
import { join } from 'node:path';
import { connectTandem } from '../adapter.js';
import { createProgress } from '../progress.js';
import { writeReports } from '../report-files.js';
import { runLoad } from '../run-load.js';
import type { LoadAuth, LoadOptions } from '../options.js';
import { connectStockWs } from '../stock-adapter.js';
import { runCatchUp } from './catch-up.js';
import { runDocSizeSweep } from './doc-size-sweep.js';
import { startHostedServer, type BenchStore, type HostedServer } from './hosted-server.js';
import { catchUpFigures, idleFigures, loadFigures, type IdleMemory, type SideOutcome } from './metrics.js';
import { CATCH_UP, LOAD_WORKLOADS, type LoadWorkload, type Side, type SuiteScale, type WorkloadId } from './suite.js';

export interface SuiteOptions {
  workloads: readonly WorkloadId[];
  sides: readonly Side[];
  scale: SuiteScale;
  /** Rounds per workload; null: each workload's own default (W1–W3 twice, W4–W5 once). */
  rounds: number | null;
  outDir: string;
  progress: LoadOptions['progress'];
  store: BenchStore;
  /**
   * The stock side's store in W1–W5: `same` as Tandem's (`store`), or `memory` (ShareDB's
   * MemoryDB, not durable). W6 always runs stock on MemoryDB.
   */
  stockStore: 'same' | 'memory';
  /** Write server CPU profiles (--cpu-prof) here. */
  cpuProfDir?: string;
  /** Node or V8 options for every server process (`--server-node-arg`). */
  serverNodeArgs?: readonly string[];
  log: (line: string) => void;
}

export interface WorkloadOutcome {
  id: WorkloadId;
  title: string;
  /** One list per side name, one outcome per round. */
  runs: Record<string, SideOutcome[]>;
}

/** `tandemEnv`: the workload's settings for a Tandem server (LoadWorkload.tandemEnv). */
async function withServer<T>(
  side: Side,
  opts: SuiteOptions,
  tandemEnv: Readonly<Record<string, string>> | undefined,
  body: (host: HostedServer) => Promise<T>,
): Promise<T> {
  const store = side.server === 'stock' && opts.stockStore === 'memory' ? 'memory' : opts.store;
  const env = side.server === 'tandem' ? tandemEnv : undefined;
  const host = await startHostedServer(side.server, {
    cpuProfDir: opts.cpuProfDir,
    nodeArgs: opts.serverNodeArgs,
    store,
    auth: side.auth,
    env,
  });
  try {
    return await body(host);
  } finally {
    await host.close();
  }
}

/** Tokens for the clients of a server with authentication; no extra claims (no rules file). */
function authOf(host: HostedServer): LoadAuth | null {
  return host.jwtSecret === null ? null : { secret: host.jwtSecret, claims: {} };
}

async function runLoadSide(w: LoadWorkload, side: Side, opts: SuiteOptions, round: number, rounds: number): Promise<SideOutcome> {
  return withServer(side, opts, w.tandemEnv, async (host) => {
    const label = `${w.id} ${side.name}${rounds > 1 ? ` round ${round + 1}` : ''}`;
    const progress = createProgress(opts.progress);
    let idle: IdleMemory | undefined;
    let before = 0;
    let connected = 0;
    let connectedCount = 1;
    if (w.id === 'W4') before = (await host.gcHeap()).heapUsed;
    const options: LoadOptions = {
      ...w.options(opts.scale),
      urls: [side.url(host)],
      transport: side.transport,
      label,
      docPrefix: `${w.id.toLowerCase()}-${round}`,
      auth: authOf(host),
    };
    const result = await runLoad(options, {
      probe: host.probe(),
      command: `npm run bench (${label})`,
      hooks: {
        onPhase: (p) => progress.phase(`${label}: ${p}`),
        onTick: (pt, e, t) => progress.tick(pt, e, t),
        ...(w.id === 'W4'
          ? {
              afterConnect: async ({ connected: n }) => {
                connected = (await host.gcHeap()).heapUsed;
                connectedCount = Math.max(1, n);
              },
              afterDocsOpen: async () => {
                const subscribed = (await host.gcHeap()).heapUsed;
                const n = connectedCount;
                idle = {
                  connections: n,
                  heapBeforeBytes: before,
                  heapConnectedBytes: connected,
                  heapSubscribedBytes: subscribed,
                  perConnectionBytes: (connected - before) / n,
                  perSubscribedConnectionBytes: (subscribed - before) / n,
                  connectSeconds: 0,
                };
              },
            }
          : {}),
      },
    });
    progress.stop();
    const files = await writeReports(result, {
      outDir: opts.outDir,
      json: join(opts.outDir, `${label.replace(/ /g, '-')}.json`),
      html: join(opts.outDir, `${label.replace(/ /g, '-')}.html`),
    });
    opts.log(`[bench] ${label}: ${result.passed ? 'ok' : `FAILED (${result.failures.join('; ')})`} — report ${files.html}`);
    const outcome: SideOutcome = {
      side: side.name,
      figures: {},
      converged: result.convergence.passed,
      error: result.passed ? null : result.failures.join('; '),
      load: result,
    };
    if (w.id === 'W4' && idle) {
      const m: IdleMemory = { ...idle, connectSeconds: result.setup.connectMs / 1000 };
      outcome.idleMemory = m;
      outcome.figures = idleFigures(m, result.clientMemory.heapPerClientBytes);
    } else {
      outcome.figures = loadFigures(w.id, result);
    }
    return outcome;
  });
}

async function runCatchUpSide(side: Side, opts: SuiteOptions): Promise<SideOutcome> {
  return withServer(side, opts, undefined, async (host) => {
    const connect = side.transport === 'socketio' ? connectTandem : connectStockWs;
    const missed = CATCH_UP.missedOps(opts.scale);
    const reps = CATCH_UP.repetitions(opts.scale);
    opts.log(`[bench] W5 ${side.name}: ${reps} × catch-up after ${missed} missed ops`);
    try {
      const c = await runCatchUp(connect, side.url(host), missed, reps, authOf(host));
      opts.log(`[bench] W5 ${side.name}: median ${c.medianMs.toFixed(1)} ms, worst ${c.maxMs.toFixed(1)} ms (${c.samplesMs.join(', ')})`);
      return {
        side: side.name,
        figures: catchUpFigures(c),
        converged: c.converged,
        error: c.converged ? null : 'reader did not converge',
        catchUp: c,
      };
    } catch (err) {
      return { side: side.name, figures: {}, converged: false, error: (err as Error).message };
    }
  });
}

export async function runSuite(opts: SuiteOptions): Promise<WorkloadOutcome[]> {
  const outcomes: WorkloadOutcome[] = [];
  let turn = 0;
  for (const id of opts.workloads) {
    if (id === 'W6') {
      // Its own rounds and order: sides alternate per document size (doc-size-sweep.ts).
      outcomes.push(await runDocSizeSweep(opts));
      continue;
    }
    const load = LOAD_WORKLOADS.find((w) => w.id === id);
    const outcome: WorkloadOutcome = { id, title: load?.title ?? CATCH_UP.title, runs: {} };
    const rounds = opts.rounds ?? load?.rounds ?? 1;
    for (let round = 0; round < rounds; round++) {
      // Alternate which side goes first, workload after workload and round after round.
      const order = turn++ % 2 === 0 ? [...opts.sides] : [...opts.sides].reverse();
      for (const side of order) {
        opts.log(`[bench] ${id} ${side.name}${rounds > 1 ? ` round ${round + 1}` : ''} …`);
        let result: SideOutcome;
        try {
          result = load ? await runLoadSide(load, side, opts, round, rounds) : await runCatchUpSide(side, opts);
        } catch (err) {
          result = { side: side.name, figures: {}, converged: false, error: (err as Error).message };
        }
        (outcome.runs[side.name] ??= []).push(result);
      }
    }
    outcomes.push(outcome);
  }
  return outcomes;
}
