/**
 * The fixed benchmark suite (documented in BENCHMARKS.md). Sizes are the full ones; `scale`
 * shrinks client counts for CI smoke runs, `smoke` also shortens every phase.
 */
import type { LoadOptions, TransportKind } from '../options.js';
import { parseMix } from '../options.js';
import type { HostedServer } from './hosted-server.js';
import type { ServerKind } from './host-protocol.js';

export type WorkloadId = 'W1' | 'W2' | 'W3' | 'W4' | 'W5';

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
}

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

export const WORKLOAD_IDS: readonly WorkloadId[] = ['W1', 'W2', 'W3', 'W4', 'W5'];
