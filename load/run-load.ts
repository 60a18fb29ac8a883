/**
 * The coordinator: plans the run, forks the load generators, walks them through the phases
 * (connect → open docs → warm-up → measure → drain + convergence check), pulls one interval
 * per second from each, and returns the LoadResult. Bounded: every phase has a deadline and
 * the workers are killed on any failure.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Aggregator, percentileCurve, summarize } from './aggregate.js';
import { Timeline } from './timeline.js';
import { TANDEM_CLIENT_NAME } from './adapter.js';
import type { ConvergenceReport, Phase, WorkerOptions } from './ipc.js';
import { reportedOptions, validateOptions, type LoadOptions } from './options.js';
import { planWorkers } from './plan.js';
import type { LoadResult, MachineInfo, ServerFigures, TimelinePoint } from './result.js';
import { httpMetricsProbe, type ServerProbe, type ServerSample } from './server-probe.js';
import { SlotClock, TICK_MS } from './slot-clock.js';
import { tokenGetter } from './tokens.js';
import { LoadRunError, WorkerPool } from './worker-pool.js';

export interface RunHooks {
  /** After every client connected (before documents open). */
  afterConnect?(info: { connected: number }): Promise<void>;
  /** After every client opened its document (before ops start). */
  afterDocsOpen?(info: { connected: number }): Promise<void>;
  /**
   * Every second with the newest timeline point (live progress), and at the start of each
   * timed phase with elapsedMs 0. elapsedMs counts the current phase: the warm-up, then the
   * measured window (its totalMs is what the report calls "measured"); totalMs is 0 in the
   * setup phases, which have no fixed length.
   */
  onTick?(point: TimelinePoint, elapsedMs: number, totalMs: number): void;
  onPhase?(phase: string): void;
}

export interface RunEnvironment {
  /** Server figures; defaults to polling each URL's /metrics. */
  probe?: ServerProbe;
  hooks?: RunHooks;
  /** Recorded in the result (the CLI passes its argv). */
  command?: string;
  /** Extra node flags for the worker processes (e.g. --cpu-prof). */
  workerExecArgv?: string[];
}

/** A worker event-loop delay p99 above this means the generator, not the server, set the pace. */
const SATURATED_LOOP_DELAY_MS = 100;

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: os.availableParallelism?.() ?? cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    totalMemBytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function workerOptions(o: LoadOptions): WorkerOptions {
  return {
    transport: o.transport,
    collection: o.collection,
    mix: o.mix,
    rate: o.rate,
    chaosPerMin: o.chaosPerMin,
    chaosOfflineMs: o.chaosOfflineMs,
    seed: o.seed,
    rampMs: o.rampMs,
    drainTimeoutMs: o.drainTimeoutMs,
    connectTimeoutMs: o.connectTimeoutMs,
    auth: o.auth,
    totalClients: o.clients,
  };
}

function serverFigures(source: string, start: ServerSample | null, end: ServerSample | null): ServerFigures {
  const delta = (k: 'commits' | 'commitRetries' | 'rejected') => {
    const a = start?.[k];
    const b = end?.[k];
    return a === null || a === undefined || b === null || b === undefined ? null : b - a;
  };
  const commits = delta('commits');
  const retries = delta('commitRetries');
  const cpuStart = start?.cpuMicros;
  const cpuEnd = end?.cpuMicros;
  const cpu = cpuStart == null || cpuEnd == null ? null : cpuEnd - cpuStart;
  return {
    source,
    commits,
    commitRetries: retries,
    retriesPerCommit: commits && retries !== null ? retries / commits : null,
    rejected: delta('rejected'),
    rssBytes: end?.rssBytes ?? null,
    heapUsedBytes: end?.heapUsedBytes ?? null,
    cpuMicrosPerCommit: cpu !== null && commits ? cpu / commits : null,
    worstLoopDelayP99Ms: null,
  };
}

function sumMemory(samples: Array<{ memory: { heapUsed: number } }>): number {
  return samples.reduce((a, s) => a + s.memory.heapUsed, 0);
}

export async function runLoad(input: LoadOptions, env: RunEnvironment = {}): Promise<LoadResult> {
  const options = validateOptions(input);
  const plans = planWorkers(options);
  const probe = env.probe ?? httpMetricsProbe(options.urls, tokenGetter(options.auth, 'load-probe'));
  const hooks = env.hooks ?? {};
  const startedAt = new Date();
  const t0 = performance.now();
  const aggregator = new Aggregator();
  const failures: string[] = [];
  const emptyConvergence = (): ConvergenceReport => ({
    docsChecked: 0,
    clientsChecked: 0,
    divergent: 0,
    details: [],
    undrained: 0,
    totalVersions: 0,
  });
  let convergence = emptyConvergence();
  const setup = {
    clients: options.clients,
    connected: 0,
    connectFailed: 0,
    openFailed: 0,
    connectMs: 0,
    openDocsMs: 0,
    workers: plans.length,
  };
  let measureStart: ServerSample | null = null;
  let measureEnd: ServerSample | null = null;
  let measuredMs = 0;
  let serverMeasuredMs = 0;
  let heapPerClient = 0;

  const pool = new WorkerPool(plans.length, env.workerExecArgv);
  const timeline = new Timeline();
  // Live progress counts the phase in progress, not the whole run: a 15 s run shows x/15 s
  // while measuring (the warm-up has its own count before).
  let phaseWindow = { startedAt: t0, totalMs: 0 };
  let lastPoint: TimelinePoint | null = null;
  const clock = new SlotClock(pool, aggregator, timeline, probe, t0, (point) => {
    lastPoint = point;
    // Timed from the slot's flush, not from now: the point may come up to 0.8 s after it.
    hooks.onTick?.(point, Math.max(0, clock.lastFlushAt - phaseWindow.startedAt), phaseWindow.totalMs);
  });
  /** `name` is what progress shows; opening documents is part of the 'connect' phase. */
  const enterPhase = (name: Phase | 'open-docs', startedAt: number, totalMs: number): void => {
    clock.phase = name === 'open-docs' ? 'connect' : name;
    phaseWindow = { startedAt, totalMs };
    hooks.onPhase?.(name);
    if (totalMs > 0 && lastPoint) hooks.onTick?.(lastPoint, 0, totalMs);
  };
  await clock.sampleServerNow();

  try {
    const ready = await pool.request((w) => ({ type: 'init', plan: plans[w]!, options: workerOptions(options) }), 'ready', 30_000);
    enterPhase('connect', performance.now(), 0);
    clock.startBackground();
    const connected = await pool.request({ type: 'connect' }, 'connected', options.rampMs + options.connectTimeoutMs + 60_000);
    setup.connected = connected.reduce((a, r) => a + r.ok, 0);
    setup.connectFailed = connected.reduce((a, r) => a + r.failed, 0);
    setup.connectMs = Math.max(...connected.map((r) => r.ms));
    if (setup.connected === 0) throw new LoadRunError('no client could connect');
    await hooks.afterConnect?.({ connected: setup.connected });
    enterPhase('open-docs', performance.now(), 0);
    const opened = await pool.request({ type: 'open-docs' }, 'docs-open', options.connectTimeoutMs + 120_000);
    setup.openFailed = opened.reduce((a, r) => a + r.failed, 0);
    setup.openDocsMs = Math.max(...opened.map((r) => r.ms));
    heapPerClient = (sumMemory(opened) - sumMemory(ready)) / Math.max(1, setup.connected);
    await hooks.afterDocsOpen?.({ connected: setup.connected - setup.openFailed });
    await clock.stopBackground();

    // The run: slots on an absolute 1 s grid from the start, phase changes on slot edges.
    const warmupSlots = Math.ceil(options.warmupMs / TICK_MS);
    const measureSlots = Math.ceil(options.durationMs / TICK_MS);
    const totalSlots = warmupSlots + measureSlots;
    // Workers start in warm-up; the switch to 'measure' follows a flush, so every interval
    // belongs wholly to one phase.
    clock.phase = 'warmup';
    await pool.request({ type: 'run', phase: 'warmup' }, 'running', 30_000);
    const runStart = performance.now();
    // The phases last whole slots, and progress shows what will be measured.
    if (warmupSlots > 0) enterPhase('warmup', runStart, warmupSlots * TICK_MS);
    let measureStartedAt = runStart;
    let serverStart: Promise<{ sample: ServerSample | null; at: number }> = Promise.resolve({ sample: null, at: 0 });
    const startMeasuring = () => {
      pool.broadcast({ type: 'phase', phase: 'measure' });
      measureStartedAt = clock.lastFlushAt;
      enterPhase('measure', measureStartedAt, measureSlots * TICK_MS);
      // Server rates are taken between two samples of their own, while ops flow.
      serverStart = clock.sampleServerNow();
    };
    if (warmupSlots === 0) {
      await clock.close();
      startMeasuring();
    }
    for (let k = 1; k <= totalSlots && !pool.failed; k++) {
      await sleep(runStart + k * TICK_MS - performance.now());
      await clock.close();
      if (k === warmupSlots) startMeasuring();
    }
    if (pool.failed) throw pool.failed;
    measuredMs = clock.lastFlushAt - measureStartedAt;
    const [first, last] = [await serverStart, await clock.sampleServerNow()];
    measureStart = first.sample;
    measureEnd = last.sample;
    serverMeasuredMs = last.at - first.at;

    enterPhase('drain', performance.now(), 0);
    pool.broadcast({ type: 'phase', phase: 'drain' });
    const stopped = await pool.request({ type: 'stop' }, 'stopped', options.drainTimeoutMs + 90_000);
    convergence = emptyConvergence();
    stopped.forEach((s, worker) => {
      aggregator.add(worker, s.final);
      const c = s.convergence;
      convergence.docsChecked += c.docsChecked;
      convergence.clientsChecked += c.clientsChecked;
      convergence.divergent += c.divergent;
      convergence.undrained += c.undrained;
      convergence.totalVersions += c.totalVersions;
      convergence.details.push(...c.details);
    });
    convergence.details = convergence.details.slice(0, 20);
  } catch (err) {
    failures.push(err instanceof Error ? err.message : String(err));
  } finally {
    await clock.stopBackground().catch(() => {});
    await pool.close();
  }

  const seconds = measuredMs / 1000 || 1;
  const server = serverFigures(probe.source, measureStart, measureEnd);
  const points = timeline.points();
  const serverLoops = points
    .filter((p) => p.phase === 'measure' && p.serverLoopDelayP99Ms !== undefined)
    .map((p) => p.serverLoopDelayP99Ms!);
  server.worstLoopDelayP99Ms = serverLoops.length ? Math.max(...serverLoops) : null;
  if (failures.length === 0 && convergence.divergent > 0)
    failures.push(`${convergence.divergent} client document(s) diverged from the server`);
  if (failures.length === 0 && convergence.undrained > 0)
    failures.push(`${convergence.undrained} client(s) still had unacknowledged ops after the drain timeout`);
  if (failures.length === 0 && convergence.clientsChecked === 0) failures.push('no client document was checked');
  const convergencePassed = failures.length === 0;
  const clientMemory = aggregator.clientMemory();
  const warnings: string[] = [];
  if (aggregator.worstLoopDelayP99Ms > SATURATED_LOOP_DELAY_MS) {
    warnings.push(
      `load generators saturated (event-loop delay p99 up to ${aggregator.worstLoopDelayP99Ms.toFixed(0)} ms): latencies include ` +
        'client-side queueing; add --workers, lower --rate, or run the load tool on another machine',
    );
  }
  return {
    tool: 'tandem-load',
    formatVersion: 1,
    label: options.label,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: machineInfo(),
    command: env.command ?? '',
    options: reportedOptions(options),
    client: options.transport === 'socketio' ? TANDEM_CLIENT_NAME : 'stock ShareDB client over ws',
    setup,
    measuredSeconds: Math.round(seconds * 10) / 10,
    throughput: {
      ackedPerSec: aggregator.measured.acked / seconds,
      submittedPerSec: aggregator.measured.submitted / seconds,
      serverCommitsPerSec: server.commits === null || serverMeasuredMs <= 0 ? null : server.commits / (serverMeasuredMs / 1000),
      presencePerSec: aggregator.measured.presenceSeen / seconds,
    },
    latency: { ack: summarize(aggregator.ack), seen: summarize(aggregator.seen), presence: summarize(aggregator.presence) },
    errors: aggregator.errors,
    failedOps: aggregator.failedOps,
    reconnects: aggregator.reconnects,
    chaosDisconnects: aggregator.chaosDisconnects,
    delayedByDisconnect: aggregator.delayedByDisconnect,
    server,
    clientMemory: { rssBytes: clientMemory.rss, heapUsedBytes: clientMemory.heapUsed, heapPerClientBytes: heapPerClient },
    loadGenerator: {
      worstLoopDelayP99Ms: aggregator.worstLoopDelayP99Ms,
      cpuMicrosPerOp: aggregator.measured.acked ? aggregator.measured.cpuMicros / aggregator.measured.acked : null,
    },
    convergence: { ...convergence, passed: convergencePassed },
    timeline: points,
    histogram: aggregator.histogram(),
    percentiles: { ack: percentileCurve(aggregator.ack), seen: percentileCurve(aggregator.seen) },
    passed: failures.length === 0,
    failures,
    warnings,
  };
}
