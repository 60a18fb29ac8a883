/**
 * What the benchmark reports per workload: the figures taken from each side's run, the
 * headline used for the Tandem/stock ratio, and the targets.
 */
import type { LoadResult } from '../result.js';
import type { CatchUpResult } from './catch-up.js';
import type { SweepPoint } from './doc-size-sweep.js';
import { DOC_SIZE_SWEEP, type WorkloadId } from './suite.js';

export interface IdleMemory {
  connections: number;
  heapBeforeBytes: number;
  heapConnectedBytes: number;
  heapSubscribedBytes: number;
  /** (heap with N idle connections − heap before) / N, GC forced in the server process. */
  perConnectionBytes: number;
  /** Same, once each connection also subscribed to one document (10 per document). */
  perSubscribedConnectionBytes: number;
  /** The connect phase (bounded below by the workload's ramp-up). */
  connectSeconds: number;
}

export interface SideOutcome {
  side: string;
  /** Headline and secondary figures, by metric key (see METRICS). */
  figures: Record<string, number | null>;
  converged: boolean;
  error: string | null;
  load?: LoadResult;
  idleMemory?: IdleMemory;
  catchUp?: CatchUpResult;
  /** W6: one point per document size, in the order measured. */
  docSizeSweep?: SweepPoint[];
}

export interface MetricDef {
  key: string;
  label: string;
  /** 'higher' or 'lower' is better; decides how the ratio reads. */
  better: 'higher' | 'lower';
  /** Target on Tandem's figure and/or the ratio, as in the issue. */
  target?: { value?: (v: number) => boolean; ratio?: (r: number) => boolean; text: string };
  digits: number;
}

/** W6's rows: the same figures at each document size, then how the CPU per op grew. */
function sweepMetrics(): MetricDef[] {
  const rows: MetricDef[] = [];
  for (const { key, label } of DOC_SIZE_SWEEP.sizes) {
    rows.push(
      { key: `${key}.commitsPerSec`, label: `${label}: committed ops/s (server)`, better: 'higher', digits: 0 },
      { key: `${key}.serverCpuUs`, label: `${label}: server CPU µs per op`, better: 'lower', digits: 0 },
      { key: `${key}.ackP50`, label: `${label}: submit→ack p50 ms`, better: 'lower', digits: 2 },
      { key: `${key}.ackP99`, label: `${label}: submit→ack p99 ms`, better: 'lower', digits: 2 },
      { key: `${key}.writerCpuUs`, label: `${label}: writers' CPU µs per op (bench process, stock clients)`, better: 'lower', digits: 0 },
      {
        key: `${key}.subscriberCpuUs`,
        label: `${label}: subscriber CPU µs per remote op (tandem: SDK over socket.io; stock: ShareDB client over ws)`,
        better: 'lower',
        digits: 1,
      },
    );
  }
  rows.push(
    { key: 'serverCpuGrowth', label: 'server CPU per op, 1 MB ÷ empty', better: 'lower', digits: 2 },
    { key: 'subscriberCpuGrowth', label: 'subscriber CPU per remote op, 1 MB ÷ empty', better: 'lower', digits: 2 },
  );
  return rows;
}

export const METRICS: Readonly<Record<WorkloadId, readonly MetricDef[]>> = {
  W1: [
    {
      key: 'commitsPerSec',
      label: 'committed ops/s (server)',
      better: 'higher',
      digits: 0,
      target: { value: (v) => v >= 5000, ratio: (r) => r >= 1, text: '≥ 5,000/s and ratio ≥ 1.0' },
    },
    { key: 'ackP50', label: 'submit→ack p50 ms', better: 'lower', digits: 1 },
    { key: 'ackP99', label: 'submit→ack p99 ms', better: 'lower', digits: 1 },
    { key: 'seenP99', label: 'submit→seen p99 ms', better: 'lower', digits: 1 },
    { key: 'retriesPerCommit', label: 'retries per commit', better: 'lower', digits: 3 },
    { key: 'serverCpuUs', label: 'server CPU µs per commit', better: 'lower', digits: 0 },
    { key: 'clientCpuUs', label: 'client CPU µs per op (load generators)', better: 'lower', digits: 0 },
    { key: 'serverLoopP99', label: 'server event-loop delay p99 ms (worst second)', better: 'lower', digits: 1 },
    { key: 'clientLoopP99', label: 'load-generator event-loop delay p99 ms (worst second)', better: 'lower', digits: 1 },
  ],
  W2: [
    {
      key: 'commitsPerSec',
      label: 'committed ops/s (server)',
      better: 'higher',
      digits: 0,
      target: { ratio: (r) => r >= 3, text: 'ratio ≥ 3' },
    },
    {
      key: 'retriesPerCommit',
      label: 'retries per commit',
      better: 'lower',
      digits: 3,
      target: { value: (v) => v <= 0.05, text: '≤ 0.05' },
    },
    { key: 'ackP50', label: 'submit→ack p50 ms', better: 'lower', digits: 1 },
    { key: 'ackP99', label: 'submit→ack p99 ms', better: 'lower', digits: 1 },
    { key: 'serverCpuUs', label: 'server CPU µs per commit', better: 'lower', digits: 0 },
    { key: 'clientCpuUs', label: 'client CPU µs per op (load generators)', better: 'lower', digits: 0 },
    { key: 'serverLoopP99', label: 'server event-loop delay p99 ms (worst second)', better: 'lower', digits: 1 },
    { key: 'clientLoopP99', label: 'load-generator event-loop delay p99 ms (worst second)', better: 'lower', digits: 1 },
  ],
  W3: [
    { key: 'ackP99', label: 'submit→ack p99 ms', better: 'lower', digits: 2, target: { value: (v) => v <= 10, text: '≤ 10 ms' } },
    { key: 'ackP50', label: 'submit→ack p50 ms', better: 'lower', digits: 2 },
    { key: 'ackP999', label: 'submit→ack p99.9 ms', better: 'lower', digits: 1 },
    { key: 'seenP99', label: 'submit→seen p99 ms', better: 'lower', digits: 2 },
    { key: 'ackedPerSec', label: 'acked ops/s', better: 'higher', digits: 0 },
    { key: 'serverCpuUs', label: 'server CPU µs per commit', better: 'lower', digits: 0 },
    { key: 'clientCpuUs', label: 'client CPU µs per op (load generators)', better: 'lower', digits: 0 },
    { key: 'serverLoopP99', label: 'server event-loop delay p99 ms (worst second)', better: 'lower', digits: 1 },
    { key: 'clientLoopP99', label: 'load-generator event-loop delay p99 ms (worst second)', better: 'lower', digits: 1 },
  ],
  W4: [
    {
      key: 'perConnKB',
      label: 'server heap KB per idle connection',
      better: 'lower',
      digits: 1,
      target: { value: (v) => v <= 15, text: '≤ 15 KB' },
    },
    { key: 'perSubscribedKB', label: '… once subscribed to a doc', better: 'lower', digits: 1 },
    { key: 'clientHeapKB', label: 'load-client heap KB per connection', better: 'lower', digits: 1 },
  ],
  W5: [
    { key: 'medianMs', label: 'catch-up median ms', better: 'lower', digits: 1, target: { value: (v) => v <= 100, text: '≤ 100 ms' } },
    { key: 'maxMs', label: 'catch-up worst ms', better: 'lower', digits: 1 },
  ],
  W6: sweepMetrics(),
};

const round = (v: number, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;

export function loadFigures(id: WorkloadId, r: LoadResult): Record<string, number | null> {
  const f: Record<string, number | null> = {
    commitsPerSec: r.throughput.serverCommitsPerSec,
    ackedPerSec: r.throughput.ackedPerSec,
    ackP50: r.latency.ack.p50,
    ackP99: r.latency.ack.p99,
    ackP999: r.latency.ack.p999,
    seenP99: r.latency.seen.p99,
    retriesPerCommit: r.server.retriesPerCommit,
    serverCpuUs: r.server.cpuMicrosPerCommit,
    clientCpuUs: r.loadGenerator.cpuMicrosPerOp,
    serverLoopP99: r.server.worstLoopDelayP99Ms,
    clientLoopP99: r.loadGenerator.worstLoopDelayP99Ms,
  };
  const keys = new Set(METRICS[id].map((m) => m.key));
  return Object.fromEntries(
    Object.entries(f)
      .filter(([k]) => keys.has(k))
      .map(([k, v]) => [k, v === null ? null : round(v)]),
  );
}

export function idleFigures(m: IdleMemory, clientHeapPerConn: number): Record<string, number | null> {
  return {
    perConnKB: round(m.perConnectionBytes / 1024, 2),
    perSubscribedKB: round(m.perSubscribedConnectionBytes / 1024, 2),
    clientHeapKB: round(clientHeapPerConn / 1024, 2),
  };
}

export function catchUpFigures(c: CatchUpResult): Record<string, number | null> {
  return { medianMs: round(c.medianMs, 1), maxMs: round(c.maxMs, 1) };
}

/** W6's figures for one side and round, from its points (one per size). */
export function sweepFigures(points: readonly SweepPoint[]): Record<string, number | null> {
  const f: Record<string, number | null> = {};
  const at = (key: string) => points.find((p) => p.size === key);
  for (const { key } of DOC_SIZE_SWEEP.sizes) {
    const p = at(key);
    const value = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? null : round(v, digits));
    f[`${key}.commitsPerSec`] = value(p?.commitsPerSec);
    f[`${key}.serverCpuUs`] = value(p?.serverCpuMicrosPerOp);
    f[`${key}.ackP50`] = value(p?.ack.p50);
    f[`${key}.ackP99`] = value(p?.ack.p99);
    f[`${key}.writerCpuUs`] = value(p?.writerCpuMicrosPerOp);
    f[`${key}.subscriberCpuUs`] = value(p?.subscriber?.cpuMicrosPerOp);
  }
  const growth = (k: string) => {
    const empty = f[`empty.${k}`];
    const large = f[`1m.${k}`];
    return empty && large !== null && large !== undefined ? round(large / empty) : null;
  };
  f.serverCpuGrowth = growth('serverCpuUs');
  f.subscriberCpuGrowth = growth('subscriberCpuUs');
  return f;
}
