/**
 * The fixed benchmark suite (documented in BENCHMARKS.md). Sizes are the full ones; `scale`
 * shrinks client counts for CI smoke runs, `smoke` also shortens every phase.
 */
import type { LoadOptions, TransportKind } from '../options.js';
import { parseMix } from '../options.js';
import type { HostedServer } from './hosted-server.js';
import type { ServerKind } from './host-protocol.js';

export type WorkloadId = 'W1' | 'W2' | 'W3' | 'W4' | 'W5' | 'W6';

export interface Side {
  readonly name: string;
  readonly server: ServerKind;
  readonly transport: TransportKind;
  /** The server requires tokens (a fresh AUTH_JWT_SECRET per server); each client has its own. */
  readonly auth?: boolean;
  url(host: HostedServer): string;
}

export const SIDES: Readonly<Record<string, Side>> = {
  /** Tandem server, Tandem's client over socket.io. */
  tandem: { name: 'tandem', server: 'tandem', transport: 'socketio', url: (h) => h.url },
  /** Stock ShareDB server, stock ShareDB client over ws. */
  stock: { name: 'stock', server: 'stock', transport: 'sharedb-ws', url: (h) => h.sharedbWsUrl },
  /** Tandem server, stock ShareDB client over ws at /sharedb: separates transport from server. */
  'tandem-ws': { name: 'tandem-ws', server: 'tandem', transport: 'sharedb-ws', url: (h) => h.sharedbWsUrl },
  /** As `tandem`, with authentication on (HS256 tokens): next to `tandem`, what auth costs. */
  'tandem-auth': { name: 'tandem-auth', server: 'tandem', transport: 'socketio', auth: true, url: (h) => h.url },
};

export interface SuiteScale {
  /** Multiplies client/connection/op counts (1 = full suite). */
  factor: number;
  /** Short phases (CI smoke). */
  smoke: boolean;
}

export interface LoadWorkload {
  readonly id: 'W1' | 'W2' | 'W3' | 'W4';
  readonly title: string;
  /** Rounds in a default run: the noisy throughput and latency workloads run twice, sides
   * in A B B A order, so one slow spell of a shared machine does not decide the ratio. */
  readonly rounds: number;
  options(scale: SuiteScale): Omit<LoadOptions, 'urls' | 'transport' | 'label' | 'docPrefix' | 'auth'>;
  /** Settings of Tandem's server for this workload (server/config.ts), over the bench's environment. */
  readonly tandemEnv?: Readonly<Record<string, string>>;
}

/**
 * OPS_PER_MINUTE for workloads whose writers each commit more than the default 6,000 a minute
 * per connection (stock ShareDB has no such limit). The limit is still checked on every op.
 */
export const UNLIMITED_OPS_PER_MINUTE = String(1_000_000_000);

const atLeast = (n: number, min: number) => Math.max(min, Math.round(n));

function base(
  scale: SuiteScale,
  o: { clients: number; docs: number; minClients: number; rampS: number; warmupS: number; durationS: number },
) {
  const clients = atLeast(o.clients * scale.factor, o.minClients);
  return {
    clients,
    docs: Math.min(clients, atLeast(o.docs * scale.factor, 1)),
    collection: 'bench',
    rampMs: (scale.smoke ? Math.min(o.rampS, 0.5) : o.rampS) * 1000,
    warmupMs: (scale.smoke ? Math.min(o.warmupS, 1) : o.warmupS) * 1000,
    durationMs: (scale.smoke ? Math.min(o.durationS, 2) : o.durationS) * 1000,
    chaosPerMin: 0,
    chaosOfflineMs: [0, 0] as [number, number],
    seed: 42,
    allowRemote: false,
    drainTimeoutMs: 60_000,
    connectTimeoutMs: 30_000,
    progress: 'lines' as const,
  };
}

const TYPING_AND_STRUCTURE = parseMix('text=85,struct=15');

export const LOAD_WORKLOADS: readonly LoadWorkload[] = [
  {
    id: 'W1',
    title: 'many docs: 1,000 clients on 250 docs, closed loop (each client 1 op in flight), 85% typing / 15% structural',
    rounds: 2,
    options: (s) => ({
      ...base(s, { clients: 1000, docs: 250, minClients: 8, rampS: 10, warmupS: 5, durationS: 12 }),
      mix: TYPING_AND_STRUCTURE,
      rate: 'max',
      workers: 2,
    }),
  },
  {
    id: 'W2',
    title: 'one hot doc: 50 writers on 1 doc, each ≤ 1 op in flight, typing',
    rounds: 2,
    // Fewer writers (a --scale below 1) each want more than OPS_PER_MINUTE's 100 ops a second,
    // and then that limit, not the server, would set Tandem's pace.
    tandemEnv: { OPS_PER_MINUTE: UNLIMITED_OPS_PER_MINUTE },
    options: (s) => ({
      ...base(s, { clients: 50, docs: 1, minClients: 5, rampS: 1, warmupS: 3, durationS: 10 }),
      docs: 1,
      mix: parseMix('text=100'),
      rate: 'max',
      workers: 1,
    }),
  },
  {
    id: 'W3',
    title: 'latency: 1,000 clients × 1 op/s (open loop, Poisson) on 250 docs, 85% typing / 15% structural',
    rounds: 2,
    options: (s) => ({
      ...base(s, { clients: 1000, docs: 250, minClients: 8, rampS: 10, warmupS: 5, durationS: 15 }),
      mix: TYPING_AND_STRUCTURE,
      rate: 1,
      workers: 2,
    }),
  },
  {
    id: 'W4',
    title: 'memory per idle connection: 10,000 connections (then subscribed, 10 per doc), server heap after forced GC',
    rounds: 1,
    options: (s) => ({
      ...base(s, { clients: 10_000, docs: 1000, minClients: 20, rampS: 20, warmupS: 0, durationS: 1 }),
      mix: TYPING_AND_STRUCTURE,
      rate: 0,
      workers: 4,
      connectTimeoutMs: 60_000,
    }),
  },
];

export interface CatchUpWorkload {
  readonly id: 'W5';
  readonly title: string;
  missedOps(scale: SuiteScale): number;
  repetitions(scale: SuiteScale): number;
}

export const CATCH_UP: CatchUpWorkload = {
  id: 'W5',
  title: 'reconnect catch-up: a client offline while 1,000 ops commit, time from reconnect to caught up',
  missedOps: (s) => atLeast(1000 * s.factor, 20),
  repetitions: (s) => (s.smoke ? 2 : 7),
};

/** A document size W6 measures at: characters of `text` (ASCII only, so also code points). */
export interface SweepSize {
  /** Prefix of its figures' keys (see METRICS.W6). */
  readonly key: 'empty' | '128k' | '1m';
  readonly label: string;
  readonly chars: number;
}

export interface DocSizeSweepWorkload {
  readonly id: 'W6';
  readonly title: string;
  /** Every size, smoke runs included: growth from empty to 1 MB is the point of W6. */
  readonly sizes: readonly SweepSize[];
  /** Items in each document's list, next to its text. */
  readonly items: number;
  readonly rounds: number;
  /** Writers, one document each. */
  clients(scale: SuiteScale): number;
  phases(scale: SuiteScale): {
    /** The writers type, not measured (after the documents exist). */
    warmupMs: number;
    measureMs: number;
    /** The subscriber loads the document and receives ops, not measured. */
    subscriberWarmupMs: number;
    subscriberMeasureMs: number;
  };
}

export const DOC_SIZE_SWEEP: DocSizeSweepWorkload = {
  id: 'W6',
  title:
    'document-size sweep: 10 writers, each on its own document (text of 0, 128 KB or 1 MB + 1,000 list items), closed loop inserting one character; then one subscriber per document size',
  sizes: [
    { key: 'empty', label: 'empty', chars: 0 },
    { key: '128k', label: '128 KB', chars: 128 * 1024 },
    { key: '1m', label: '1 MB', chars: 1024 * 1024 },
  ],
  items: 1000,
  rounds: 2,
  clients: (s) => atLeast(10 * s.factor, 3),
  phases: (s) =>
    s.smoke
      ? { warmupMs: 500, measureMs: 1500, subscriberWarmupMs: 300, subscriberMeasureMs: 1000 }
      : { warmupMs: 3000, measureMs: 8000, subscriberWarmupMs: 1000, subscriberMeasureMs: 3000 },
};

export const WORKLOAD_IDS: readonly WorkloadId[] = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6'];
