/**
 * Messages between the coordinator (load/run-load.ts) and its worker processes
 * (load/worker.ts), over Node's child-process IPC channel.
 */
import type { LoadOptions } from './options.js';
import type { WorkerPlan } from './plan.js';

/** The options a worker needs (no report paths or progress settings). */
export type WorkerOptions = Pick<
  LoadOptions,
  | 'transport'
  | 'collection'
  | 'mix'
  | 'rate'
  | 'chaosPerMin'
  | 'chaosOfflineMs'
  | 'seed'
  | 'rampMs'
  | 'drainTimeoutMs'
  | 'connectTimeoutMs'
  | 'auth'
> & { readonly totalClients: number };

export type Phase = 'connect' | 'warmup' | 'measure' | 'drain';

export type ToWorker =
  | { type: 'init'; plan: WorkerPlan; options: WorkerOptions }
  | { type: 'connect' }
  | { type: 'open-docs' }
  | { type: 'run'; phase: 'warmup' | 'measure' }
  | { type: 'phase'; phase: Phase }
  /** Asks for the interval since the last flush; the reply carries the same slot. */
  | { type: 'flush'; slot: number }
  | { type: 'stop' }
  | { type: 'close' };

export interface MemorySample {
  rss: number;
  heapUsed: number;
}

/** Log-spaced latency buckets: index = floor(4·log2(µs)), i.e. quarter-octaves. */
export const BUCKETS_PER_OCTAVE = 4;
export const BUCKET_COUNT = 4 * 32;

/** What one worker measured between two flushes. */
export interface IntervalReport {
  slot: number;
  /** Phase when the interval was taken (its samples belong to this phase). */
  phase: Phase;
  /** Ops handed to the client library. */
  submitted: number;
  /** Ops acknowledged by the server. */
  acked: number;
  /** Ops the server refused (their error codes are in `errors`). */
  failed: number;
  presenceSent: number;
  presenceSeen: number;
  /** Samples left out of the latency histograms because a disconnect delayed them. */
  delayedByDisconnect: number;
  reconnects: number;
  chaosDisconnects: number;
  errors: Record<string, number>;
  /** HDR histograms (µs), hdr-histogram-js compressed base64; '' when empty. */
  ackHist: string;
  seenHist: string;
  presenceHist: string;
  ackBuckets: number[];
  seenBuckets: number[];
  /** Clients connected at the end of the interval. */
  online: number;
  /** Ops submitted and not yet acknowledged, over all clients. */
  pending: number;
  memory: MemorySample;
  /** CPU time (user + system) the worker process used in this interval, µs. */
  cpuMicros: number;
  /** The worker's event-loop delay p99 and max in this interval (ms): a saturated load
   * generator shows here before it distorts latencies unnoticed. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

export interface Divergence {
  docId: string;
  client: number;
  clientVersion: number | null;
  serverVersion: number;
  reason: string;
}

export interface ConvergenceReport {
  docsChecked: number;
  clientsChecked: number;
  divergent: number;
  /** The first divergences (up to 20), for the report. */
  details: Divergence[];
  /** Clients whose pending ops were still unacknowledged at the drain timeout. */
  undrained: number;
  /** Sum over the documents of their final versions (ops committed, creates included). */
  totalVersions: number;
}

export type FromWorker =
  | { type: 'ready'; memory: MemorySample }
  | { type: 'connected'; ok: number; failed: number; memory: MemorySample; ms: number }
  | { type: 'docs-open'; ok: number; failed: number; memory: MemorySample; ms: number }
  | { type: 'running' }
  | { type: 'interval'; report: IntervalReport }
  | { type: 'stopped'; convergence: ConvergenceReport; final: IntervalReport }
  | { type: 'closed' }
  | { type: 'fatal'; message: string };
