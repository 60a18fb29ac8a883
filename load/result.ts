/**
 * The shape of a load run's result: what the JSON report holds and the HTML report shows.
 * Latencies are in milliseconds; memory in bytes.
 */
import type { ConvergenceReport, Phase } from './ipc.js';
import type { ReportedOptions } from './options.js';

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface TimelinePoint {
  /** Seconds since the run started (end of the slot). */
  t: number;
  phase: Phase;
  /** Worker processes whose report for this second arrived (fewer: partial figures). */
  workersReporting: number;
  ackedPerSec: number;
  submittedPerSec: number;
  /** Server-side commits per second (all instances), when the server exposes them. */
  serverCommitsPerSec: number | null;
  presencePerSec: number;
  ackP50: number | null;
  ackP99: number | null;
  seenP50: number | null;
  seenP99: number | null;
  online: number;
  pending: number;
  errors: number;
  reconnects: number;
  clientHeapBytes: number;
  serverRssBytes: number | null;
  /** The server's event-loop delay p99 over the second. Present only when the server reports
   * it (the benchmark's server host does); a server's GET /metrics has no such figure, and
   * the key is left out rather than filled with nulls. */
  serverLoopDelayP99Ms?: number;
  /** The load generators' worst event-loop delay p99 over the second. */
  loopDelayP99Ms: number;
}

export interface ServerFigures {
  /** Where the figures came from: the server's /metrics, the benchmark's process host, none. */
  source: string;
  commits: number | null;
  commitRetries: number | null;
  retriesPerCommit: number | null;
  rejected: number | null;
  rssBytes: number | null;
  heapUsedBytes: number | null;
  /** Server CPU time per commit in the measured window, µs (when the server reports CPU). */
  cpuMicrosPerCommit: number | null;
  /** Worst per-second event-loop delay p99 of the server in the measured window, ms (null
   * when the server does not report its event-loop delay, as GET /metrics does not). */
  worstLoopDelayP99Ms: number | null;
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  totalMemBytes: number;
  node: string;
  platform: string;
}

export interface LoadResult {
  tool: 'tandem-load';
  formatVersion: 1;
  label: string;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  command: string;
  /** The run's options, without the JWT secret. */
  options: ReportedOptions;
  client: string;
  setup: {
    clients: number;
    connected: number;
    connectFailed: number;
    openFailed: number;
    connectMs: number;
    openDocsMs: number;
    workers: number;
  };
  /** Figures over the measured window only (after ramp-up and warm-up). */
  measuredSeconds: number;
  throughput: { ackedPerSec: number; submittedPerSec: number; serverCommitsPerSec: number | null; presencePerSec: number };
  latency: { ack: LatencySummary; seen: LatencySummary; presence: LatencySummary };
  /** Error counts by code over the whole run (connect, run, drain). */
  errors: Record<string, number>;
  failedOps: number;
  reconnects: number;
  chaosDisconnects: number;
  delayedByDisconnect: number;
  server: ServerFigures;
  /** Load generators' memory at the end; per client = (heap with documents open − heap
   * before connecting) / connected clients. */
  clientMemory: { rssBytes: number; heapUsedBytes: number; heapPerClientBytes: number };
  /** Load generator processes: worst event-loop delay p99 over the measured intervals (a saturated
   * generator shows here), and CPU time per acknowledged op in the measured window. */
  loadGenerator: { worstLoopDelayP99Ms: number; cpuMicrosPerOp: number | null };
  convergence: ConvergenceReport & { passed: boolean };
  timeline: TimelinePoint[];
  /** Latency histogram over the measured window: bucket lower bounds (ms) and counts. */
  histogram: { floorsMs: number[]; ack: number[]; seen: number[] };
  /** HDR percentile curves over the measured window: [percentile, ms] pairs. */
  percentiles: { ack: Array<[number, number]>; seen: Array<[number, number]> };
  passed: boolean;
  /** Why the run failed, when it did. */
  failures: string[];
  /** Things that make the figures less trustworthy (a saturated load generator…). */
  warnings: string[];
}
