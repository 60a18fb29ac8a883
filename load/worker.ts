/**
 * A load generator process: runs its share of simulated clients (load/plan.ts) under the
 * coordinator's direction (load/ipc.ts), reports an interval per flush, and checks its
 * documents' convergence at the end. Started by load/run-load.ts with child_process.fork.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { ConnectFn } from './adapter-types.js';
import { errorCode } from './adapter-types.js';
import { connectTandem } from './adapter.js';
import { checkConvergence } from './convergence.js';
import type { FromWorker, MemorySample, Phase, ToWorker, WorkerOptions } from './ipc.js';
import type { WorkerPlan } from './plan.js';
import { Recorder } from './recorder.js';
import { SeenLedger } from './seen-ledger.js';
import { SimClient } from './sim-client.js';
import { connectStockWs } from './stock-adapter.js';
import { tokenGetter } from './tokens.js';

// ShareDB's client logger (untyped): its warnings become counted codes instead of console noise.
const sharedbLogger = createRequire(import.meta.url)('sharedb/lib/logger') as {
  setMethods(methods: Record<'info' | 'warn' | 'error', (...args: unknown[]) => void>): void;
};

/** "Invalid version from server. Expected: 12 Received: 13" → "SHAREDB_CLIENT_WARN Invalid version from server". */
function logCode(level: string, message: unknown): string {
  const text = String(message).split(/[.:]/)[0]!.trim().slice(0, 60);
  return `SHAREDB_CLIENT_${level.toUpperCase()} ${text}`;
}

const CONNECTORS: Record<WorkerOptions['transport'], ConnectFn> = { socketio: connectTandem, 'sharedb-ws': connectStockWs };
/** Connection attempts (and document opens) one worker keeps in flight at once. */
const CONCURRENCY = 100;

function send(message: FromWorker): void {
  process.send?.(message);
}

function memory(): MemorySample {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
}

/** Runs `task` for every item with at most `limit` in flight; returns how many failed. */
async function forAll<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
  onError: (err: unknown) => void,
): Promise<number> {
  let next = 0;
  let failed = 0;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (err) {
        failed++;
        onError(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return failed;
}

function sleepUntil(t: number): Promise<void> {
  const ms = t - performance.now();
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

class Worker {
  private readonly recorder = new Recorder();
  private readonly ledgers = new Map<string, SeenLedger>();
  private clients: SimClient[] = [];
  private phase: Phase = 'connect';
  private sweeper: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly plan: WorkerPlan,
    private readonly options: WorkerOptions,
  ) {
    const connect = CONNECTORS[options.transport];
    sharedbLogger.setMethods({
      info: () => {},
      warn: (message) => this.recorder.error(logCode('warn', message)),
      error: (message) => this.recorder.error(logCode('error', message)),
    });
    for (const docId of plan.docIds) this.ledgers.set(docId, new SeenLedger(this.recorder));
    this.clients = plan.clients.map((c) => new SimClient(c, options, connect, this.recorder, this.ledgers.get(c.docId)!));
  }

  async connect(): Promise<void> {
    const start = performance.now();
    const { rampMs, totalClients } = this.options;
    const failed = new Set<SimClient>();
    await forAll(
      this.clients,
      CONCURRENCY,
      async (client) => {
        await sleepUntil(start + (rampMs * client.plan.index) / totalClients);
        try {
          await client.open();
        } catch (err) {
          failed.add(client);
          throw err;
        }
      },
      (err) => this.recorder.error(errorCode(err)),
    );
    this.dropClients(failed);
    send({ type: 'connected', ok: this.clients.length, failed: failed.size, memory: memory(), ms: performance.now() - start });
  }

  async openDocs(): Promise<void> {
    const start = performance.now();
    const withPresence = this.options.mix.presence > 0;
    const failed = new Set<SimClient>();
    const open = async (client: SimClient) => {
      try {
        await client.openDoc(withPresence);
      } catch (err) {
        failed.add(client);
        throw err;
      }
    };
    const onError = (err: unknown) => this.recorder.error(errorCode(err));
    // Creators first, so the others subscribe to an existing document.
    await forAll(
      this.clients.filter((c) => c.plan.creator),
      CONCURRENCY,
      open,
      onError,
    );
    await forAll(
      this.clients.filter((c) => !c.plan.creator),
      CONCURRENCY,
      open,
      onError,
    );
    this.dropClients(failed);
    send({ type: 'docs-open', ok: this.clients.length, failed: failed.size, memory: memory(), ms: performance.now() - start });
  }

  run(phase: 'warmup' | 'measure'): void {
    this.phase = phase;
    for (const client of this.clients) client.start();
    this.sweeper = setInterval(() => {
      const now = performance.now();
      for (const ledger of this.ledgers.values()) ledger.sweep(now);
    }, 1000);
    send({ type: 'running' });
  }

  setPhase(phase: Phase): void {
    this.phase = phase;
  }

  flush(slot: number): void {
    send({ type: 'interval', report: this.take(slot) });
  }

  async stop(): Promise<void> {
    this.phase = 'drain';
    for (const client of this.clients) client.stop();
    const drained = Promise.all(this.clients.map((c) => c.doc?.whenNothingPending()));
    await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, this.options.drainTimeoutMs))]);
    const undrained = this.clients.filter((c) => c.doc?.hasPending).length;
    const byDoc = new Map<string, SimClient[]>();
    for (const client of this.clients) {
      if (!client.doc) continue;
      const list = byDoc.get(client.plan.docId) ?? [];
      list.push(client);
      byDoc.set(client.plan.docId, list);
    }
    const url = this.plan.clients[0]?.url;
    let convergence;
    if (url === undefined || byDoc.size === 0) {
      convergence = { docsChecked: 0, clientsChecked: 0, divergent: 0, details: [], undrained, totalVersions: 0 };
    } else {
      const checker = await CONNECTORS[this.options.transport]({
        url,
        getToken: tokenGetter(this.options.auth, `load-check-${this.plan.worker}`),
      });
      try {
        await checker.whenConnected(this.options.connectTimeoutMs);
        convergence = await checkConvergence(checker, this.options.collection, byDoc, undrained);
      } finally {
        checker.close();
      }
    }
    if (this.sweeper) clearInterval(this.sweeper);
    send({ type: 'stopped', convergence, final: this.take(-1) });
  }

  close(): void {
    for (const client of this.clients) client.close();
    send({ type: 'closed' });
  }

  private take(slot: number) {
    let online = 0;
    let pending = 0;
    for (const client of this.clients) {
      if (client.connection?.online) online++;
      pending += client.pending;
    }
    return this.recorder.take(slot, this.phase, { online, pending });
  }

  private dropClients(failed: Set<SimClient>): void {
    if (failed.size === 0) return;
    for (const client of failed) client.close();
    this.clients = this.clients.filter((c) => !failed.has(c));
  }
}

let worker: Worker | null = null;

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'init':
      worker = new Worker(message.plan, message.options);
      return send({ type: 'ready', memory: memory() });
    case 'connect':
      return worker!.connect();
    case 'open-docs':
      return worker!.openDocs();
    case 'run':
      return worker!.run(message.phase);
    case 'phase':
      return worker!.setPhase(message.phase);
    case 'flush':
      return worker!.flush(message.slot);
    case 'stop':
      return worker!.stop();
    case 'close':
      worker?.close();
      // Sockets and timers of closed clients may linger; the coordinator is done with us.
      setTimeout(() => process.exit(0), 200).unref();
      return;
  }
}

function fatal(err: unknown): void {
  send({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  setTimeout(() => process.exit(1), 100);
}

process.on('message', (message: ToWorker) => void handle(message).catch(fatal));
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
// The coordinator died or closed the channel: nothing left to do.
process.on('disconnect', () => process.exit(0));
