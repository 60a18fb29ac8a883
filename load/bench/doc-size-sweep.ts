/**
 * W6, the document-size sweep: how the cost of one small op grows with the size of the
 * document it edits. At each size (DOC_SIZE_SWEEP.sizes) and for each side, on a fresh server
 * process:
 * 1. N writers (stock ShareDB clients over a raw WebSocket on both sides — Tandem serves
 *    ShareDB's protocol at /sharedb — so only the server differs), each on its own document
 *    created before anything is measured, keep one op in flight: insert one character at a
 *    random offset of the text. Measured: committed ops/s and CPU per op of the server
 *    process (its own counters over IPC, as W1–W3), submit→ack, the writers' CPU per op.
 * 2. One subscriber, in a process of its own, on the first document while its writer alone
 *    keeps typing: the subscriber process's CPU per remote op it applied (Tandem's SDK on a
 *    Tandem side reached over socket.io, stock ShareDB's client otherwise).
 * Tandem runs on the suite's store (SQLite by default); stock ShareDB always on its
 * in-memory MemoryDB, the store a stock ShareDB deployment starts with.
 */
import type { LoadConnection, LoadDocHandle } from '../adapter-types.js';
import { tokenGetter } from '../tokens.js';
import type { LoadAuth } from '../options.js';
import { connectStockWs } from '../stock-adapter.js';
import type { LatencySummary } from '../result.js';
import { startHostedServer, type HostedServer } from './hosted-server.js';
import { sweepFigures, type SideOutcome } from './metrics.js';
import type { SuiteOptions, WorkloadOutcome } from './run-suite.js';
import { startSubscriber, type SubscriberProbe } from './subscriber-probe.js';
import type { SubscriberClient } from './subscriber-protocol.js';
import { sweepDoc } from './sweep-docs.js';
import { ClosedLoopWriters } from './sweep-writers.js';
import { DOC_SIZE_SWEEP, UNLIMITED_OPS_PER_MINUTE, type Side, type SweepSize } from './suite.js';
import { divergence } from '../convergence.js';

const COLLECTION = 'bench';
const SEED = 42;

/**
 * Tandem's limits for W6 (server/config.ts): one create op carries a whole 1 MB document, and
 * each writer commits far more than the default 6,000 ops a minute per connection. Stock
 * ShareDB has no such limits; its `ws` server takes frames up to ws's default maxPayload
 * (100 MiB).
 */
const TANDEM_ENV: Readonly<Record<string, string>> = {
  MAX_OP_BYTES: String(4 * 1024 * 1024),
  MAX_FRAME_BYTES: String(16 * 1024 * 1024),
  MAX_DOC_BYTES: String(16 * 1024 * 1024),
  OPS_PER_MINUTE: UNLIMITED_OPS_PER_MINUTE,
};

export interface SweepSubscriber {
  client: SubscriberClient;
  cpuMicros: number;
  remoteOps: number;
  wallMs: number;
  cpuMicrosPerOp: number | null;
}

export interface SweepPoint {
  size: SweepSize['key'];
  chars: number;
  round: number;
  writers: number;
  /** The measured window on the server's clock. */
  measuredMs: number;
  commits: number;
  commitsPerSec: number;
  serverCpuMicrosPerOp: number | null;
  /** The writers' own process (the bench), per acknowledged op. */
  writerCpuMicrosPerOp: number | null;
  acked: number;
  ack: LatencySummary;
  /** Submit errors by code, whole point. */
  errors: Record<string, number>;
  subscriber: SweepSubscriber | null;
  /** Every document on the server equals its writer's copy after the point. */
  converged: boolean;
  error: string | null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function authOf(host: HostedServer): LoadAuth | null {
  return host.jwtSecret === null ? null : { secret: host.jwtSecret, claims: {} };
}

/** Tandem's SDK where the side's clients speak socket.io; stock ShareDB's client over ws otherwise. */
function subscriberOf(side: Side, host: HostedServer): { client: SubscriberClient; url: string } {
  return side.server === 'tandem' && side.transport === 'socketio'
    ? { client: 'sdk', url: host.url }
    : { client: 'stock', url: host.sharedbWsUrl };
}

/** Every document as the server has it equals its writer's copy (fetched on a fresh connection). */
async function converged(
  host: HostedServer,
  auth: LoadAuth | null,
  ids: readonly string[],
  docs: readonly LoadDocHandle[],
): Promise<boolean> {
  const checker = await connectStockWs({ url: host.sharedbWsUrl, getToken: tokenGetter(auth, 'w6-check') });
  try {
    await checker.whenConnected(30_000);
    for (const [i, id] of ids.entries()) {
      const snapshot = await checker.fetchSnapshot(COLLECTION, id);
      const doc = docs[i]!;
      if (divergence(doc, snapshot) !== null) return false;
    }
    return true;
  } finally {
    checker.close();
  }
}

async function measurePoint(
  side: Side,
  size: SweepSize,
  round: number,
  opts: SuiteOptions,
  host: HostedServer,
  subscriber: SubscriberProbe,
): Promise<SweepPoint> {
  const w = DOC_SIZE_SWEEP;
  const phases = w.phases(opts.scale);
  const auth = authOf(host);
  const ids = Array.from({ length: w.clients(opts.scale) }, (_, i) => `w6-${size.key}-r${round}-${i}`);
  const connections: LoadConnection[] = [];
  try {
    for (const i of ids.keys()) {
      connections.push(await connectStockWs({ url: host.sharedbWsUrl, getToken: tokenGetter(auth, `w6-writer-${i}`) }));
    }
    await Promise.all(connections.map((c) => c.whenConnected(30_000)));
    const docs = connections.map((c, i) => c.doc(COLLECTION, ids[i]!));
    // One document at a time, before anything is measured: each create of a large document
    // is one large frame for the server to parse, check and store.
    for (const [i, doc] of docs.entries()) await doc.open(sweepDoc(size.chars, w.items, i, SEED + round));

    const writers = new ClosedLoopWriters(docs, SEED + round);
    writers.start();
    await sleep(phases.warmupMs);
    writers.resetWindow();
    const before = await host.stats();
    const cpuBefore = process.cpuUsage();
    await sleep(phases.measureMs);
    const after = await host.stats();
    const cpu = process.cpuUsage(cpuBefore);
    const window = writers.window();
    await writers.stop();

    const commits = after.commits - before.commits;
    const measuredMs = after.atMs - before.atMs;
    const serverCpu = after.cpuMicros - before.cpuMicros;

    // The subscriber: loads the document (not measured), then receives its writer's ops.
    await subscriber.loaded();
    const target = subscriberOf(side, host);
    const token = (await tokenGetter(auth, 'w6-subscriber')?.()) ?? null;
    await subscriber.subscribe({ ...target, collection: COLLECTION, id: ids[0]!, token });
    writers.start([0]);
    await sleep(phases.subscriberWarmupMs);
    await subscriber.start();
    await sleep(phases.subscriberMeasureMs);
    const received = await subscriber.stop();
    await writers.stop();

    const errors = writers.window().errors;
    const errorText = Object.entries(errors)
      .map(([code, n]) => `${code} ×${n}`)
      .join(', ');
    const ok = await converged(host, auth, ids, docs);
    return {
      size: size.key,
      chars: size.chars,
      round,
      writers: ids.length,
      measuredMs,
      commits,
      commitsPerSec: measuredMs > 0 ? (commits * 1000) / measuredMs : 0,
      serverCpuMicrosPerOp: commits > 0 ? serverCpu / commits : null,
      writerCpuMicrosPerOp: window.acked > 0 ? (cpu.user + cpu.system) / window.acked : null,
      acked: window.acked,
      ack: window.ack,
      errors,
      subscriber: {
        client: target.client,
        cpuMicros: received.cpuMicros,
        remoteOps: received.remoteOps,
        wallMs: received.wallMs,
        cpuMicrosPerOp: received.remoteOps > 0 ? received.cpuMicros / received.remoteOps : null,
      },
      converged: ok,
      error: errorText ? `submit errors: ${errorText}` : received.remoteOps > 0 ? null : 'the subscriber received no ops',
    };
  } finally {
    for (const c of connections) c.close();
  }
}

async function runPoint(side: Side, size: SweepSize, round: number, label: string, opts: SuiteOptions): Promise<SweepPoint> {
  // Loads its modules while the server starts; idle until its phase.
  const subscriber = startSubscriber();
  let host: HostedServer | null = null;
  try {
    host = await startHostedServer(side.server, {
      cpuProfDir: opts.cpuProfDir,
      nodeArgs: opts.serverNodeArgs,
      // Stock ShareDB on MemoryDB whatever the suite's store (see the file's comment).
      store: side.server === 'stock' ? 'memory' : opts.store,
      auth: side.auth,
      env: side.server === 'tandem' ? TANDEM_ENV : undefined,
    });
    return await measurePoint(side, size, round, opts, host, subscriber);
  } catch (err) {
    opts.log(`[bench] ${label}: FAILED (${(err as Error).message})`);
    return failedPoint(size, round, (err as Error).message);
  } finally {
    // The subscriber first: a client whose server went away would try to reconnect.
    await subscriber.close();
    await host?.close();
  }
}

function failedPoint(size: SweepSize, round: number, error: string): SweepPoint {
  return {
    size: size.key,
    chars: size.chars,
    round,
    writers: 0,
    measuredMs: 0,
    commits: 0,
    commitsPerSec: 0,
    serverCpuMicrosPerOp: null,
    writerCpuMicrosPerOp: null,
    acked: 0,
    ack: { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 },
    errors: {},
    subscriber: null,
    converged: false,
    error,
  };
}

function describe(p: SweepPoint): string {
  const us = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : v.toFixed(0));
  const sub = p.subscriber;
  return (
    `${p.commitsPerSec.toFixed(0)} ops/s, server ${us(p.serverCpuMicrosPerOp)} µs/op, ack p50 ${p.ack.p50.toFixed(2)} / p99 ${p.ack.p99.toFixed(2)} ms` +
    (sub ? `; ${sub.client} subscriber ${us(sub.cpuMicrosPerOp)} µs per remote op (${sub.remoteOps} ops)` : '') +
    (p.converged ? '' : '; NOT CONVERGED') +
    (p.error ? `; ${p.error}` : '')
  );
}

/**
 * Every size, each side on its own fresh server per size, rounds of A B / B A per size so a
 * slow spell of a shared machine does not always fall on one side.
 */
export async function runDocSizeSweep(opts: SuiteOptions): Promise<WorkloadOutcome> {
  const w = DOC_SIZE_SWEEP;
  const rounds = opts.rounds ?? w.rounds;
  const points = new Map<string, SweepPoint[][]>(opts.sides.map((s) => [s.name, Array.from({ length: rounds }, () => [])]));
  let turn = 0;
  for (let round = 0; round < rounds; round++) {
    for (const size of w.sizes) {
      const order = turn++ % 2 === 0 ? [...opts.sides] : [...opts.sides].reverse();
      for (const side of order) {
        const label = `W6 ${side.name} ${size.label}${rounds > 1 ? ` round ${round + 1}` : ''}`;
        opts.log(`[bench] ${label} …`);
        const point = await runPoint(side, size, round, label, opts);
        opts.log(`[bench] ${label}: ${describe(point)}`);
        points.get(side.name)![round]!.push(point);
      }
    }
  }
  const runs: Record<string, SideOutcome[]> = {};
  for (const [name, byRound] of points) {
    runs[name] = byRound.map((list) => {
      const errors = list.filter((p) => p.error).map((p) => `${p.size}: ${p.error}`);
      const ok = list.every((p) => p.converged);
      return {
        side: name,
        figures: sweepFigures(list),
        converged: ok,
        error: errors.length ? errors.join('; ') : ok ? null : 'a document did not converge',
        docSizeSweep: list,
      };
    });
  }
  return { id: w.id, title: w.title, runs };
}
