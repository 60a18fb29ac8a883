/**
 * GET /metrics in Prometheus' text format (prom-client). One registry per server (tests and
 * embedders run several in a process) merged at scrape time with one process-wide registry
 * of Node's own figures (event-loop delay, GC pauses, CPU, memory), which prom-client can
 * only start once per process.
 *
 * Labels that come from clients are bounded: a collection name or error code past the first
 * MAX_LABEL_VALUES seen is counted under `_other`, so a client inventing names cannot grow
 * the registry without limit.
 */
import type { WebhookStats } from '../webhooks/dispatcher.js';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type ShareDB from 'sharedb';
import type { BackendStats, SubmitOutcome } from '../backend.js';
import type { PubSubState } from '../pubsub/index.js';
import type { StorageState } from '../storage/index.js';
import { answerWithin } from './answer-within.js';

const MAX_LABEL_VALUES = 100;
const OTHER = '_other';
/** Seconds: commits take ~0.1 ms in memory to seconds when a store stalls. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the figures are read from (the running instance's parts). */
export interface PrometheusSources {
  stats: BackendStats;
  pubsub: ShareDB.PubSub;
  agentsCount(): number;
  /** Open connections by transport (`socket.io`, `sharedb-ws`). */
  connections(): Record<string, number>;
  pubsubState(): PubSubState;
  storageState(): StorageState;
  /** Resolve when the store / the pub/sub answers (readiness checks); bounded by the caller. */
  pingStore(): Promise<void>;
  pingPubSub(): Promise<void>;
  /** WEBHOOK_URLS deliveries, when configured. */
  webhooks?: WebhookStats | null;
}

let processRegistry: Registry | null = null;

/** Node's own figures, started once per process. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 10 });
  }
  return processRegistry;
}

/** Keeps at most MAX_LABEL_VALUES distinct values of a client-controlled label. */
class BoundedLabel {
  private readonly seen = new Set<string>();
  value(raw: string): string {
    if (this.seen.has(raw)) return raw;
    if (this.seen.size >= MAX_LABEL_VALUES) return OTHER;
    this.seen.add(raw);
    return raw;
  }
}

/** Error codes as labels: our codes and ShareDB's keep their name, anything else is `_other`. */
function codeLabel(code: string | undefined, codes: BoundedLabel): string {
  return code && /^(TANDEM|ERR)_[A-Z0-9_]+$/.test(code) ? codes.value(code) : OTHER;
}

function answers(ping: () => Promise<void>, timeoutMs: number): Promise<boolean> {
  return answerWithin(ping, timeoutMs).then(
    () => true,
    () => false,
  );
}

/** Distinct documents with at least one subscriber on this instance (ShareDB's doc channels). */
function subscribedDocuments(pubsub: ShareDB.PubSub): number {
  // `streams` (channel → subscriber streams) is ShareDB's own, not in @types/sharedb.
  const streams = (pubsub as unknown as { streams: Record<string, unknown> }).streams;
  let count = 0;
  for (const key of Object.keys(streams)) {
    // Channels are `collection.id` for documents, `collection` for queries, `$presence.…` for presence,
    // each after `prefix ` when the pub/sub has a prefix. Collection names never contain dots.
    const channel = key.slice(key.indexOf(' ') + 1);
    if (channel.includes('.') && !channel.startsWith('$presence.')) count++;
  }
  return count;
}

/** The metrics of one Tandem instance. */
export class TandemPrometheus {
  private readonly registry = new Registry();
  private readonly collections = new BoundedLabel();
  private readonly codes = new BoundedLabel();
  private readonly commits: Counter<'collection'>;
  private readonly rejected: Counter<'code'>;
  private readonly duplicates: Counter;
  private readonly retries: Counter;
  private readonly refusals: Counter<'code' | 'action'>;
  private readonly published: Counter;
  private readonly commitSeconds: Histogram;
  private readonly ackSeconds: Histogram;

  constructor(private readonly sources: PrometheusSources) {
    // Started with the first server, so GC pauses and loop delay are measured from then on.
    processMetrics();
    const registers = [this.registry];
    this.commits = new Counter({
      name: 'tandem_ops_committed_total',
      help: 'Ops committed by this instance, by collection (rate() gives ops per second).',
      labelNames: ['collection'],
      registers,
    });
    this.rejected = new Counter({
      name: 'tandem_submits_rejected_total',
      help: 'Submitted ops refused, by error code.',
      labelNames: ['code'],
      registers,
    });
    this.duplicates = new Counter({
      name: 'tandem_submits_duplicate_total',
      help: 'Resent ops recognised as already committed (acknowledged, not applied again).',
      registers,
    });
    this.retries = new Counter({
      name: 'tandem_commit_retries_total',
      help: 'Commits retried because another commit to the same document won the race.',
      registers,
    });
    this.refusals = new Counter({
      name: 'tandem_refusals_total',
      help: 'Requests and connections refused, by error code and action (connect, op, s, qf, p…).',
      labelNames: ['code', 'action'],
      registers,
    });
    this.published = new Counter({ name: 'tandem_pubsub_published_total', help: 'Messages this instance published.', registers });
    this.commitSeconds = new Histogram({
      name: 'tandem_commit_duration_seconds',
      help: "ShareDB's submit of one op: snapshot read, transforms, store commit and retries (excludes waiting for the document).",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.ackSeconds = new Histogram({
      name: 'tandem_submit_ack_duration_seconds',
      help: 'From an op reaching the server to its answer being handed to the connection (includes waiting behind other ops to the same document).',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const webhooks = sources.webhooks;
    if (webhooks) {
      // Running totals kept by the dispatcher, reported as counters.
      const total = (name: string, help: string, read: () => number) => {
        let reported = 0;
        new Counter({
          name,
          help,
          registers,
          collect() {
            const now = read();
            this.inc(now - reported);
            reported = now;
          },
        });
      };
      total('tandem_webhook_deliveries_total', 'Webhook deliveries answered 2xx.', () => webhooks.delivered);
      total('tandem_webhook_ops_delivered_total', 'Ops carried by successful webhook deliveries.', () => webhooks.opsDelivered);
      total(
        'tandem_webhook_failures_total',
        'Webhook deliveries failed (error status, no answer in time, unreachable); each is retried.',
        () => webhooks.failed,
      );
      new Gauge({
        name: 'tandem_webhook_backlog_documents',
        help: 'Documents with committed ops not yet delivered to a webhook target (summed over targets).',
        registers,
        collect() {
          this.set(webhooks.backlog());
        },
      });
    }
    new Gauge({
      name: 'tandem_submits_in_flight',
      help: 'Submits accepted and not finished.',
      registers,
      collect() {
        this.set(sources.stats.inFlight);
      },
    });
    new Gauge({
      name: 'tandem_agents',
      help: 'ShareDB agents: client connections of every transport and server-side connections.',
      registers,
      collect() {
        this.set(sources.agentsCount());
      },
    });
    new Gauge({
      name: 'tandem_connected_clients',
      help: 'Open client connections, by transport.',
      labelNames: ['transport'],
      registers,
      collect() {
        for (const [transport, count] of Object.entries(sources.connections())) this.set({ transport }, count);
      },
    });
    new Gauge({
      name: 'tandem_subscribed_documents',
      help: 'Documents with at least one subscriber on this instance.',
      registers,
      collect() {
        this.set(subscribedDocuments(sources.pubsub));
      },
    });
    this.mirror(
      'tandem_pubsub_publish_failures_total',
      'Publishes that could not reach Redis (re-published later).',
      (s) => s.publishFailures,
    );
    this.mirror('tandem_pubsub_republished_total', 'Ops re-published after a Redis outage.', (s) => s.republished);
    this.mirror('tandem_pubsub_outages_total', 'Redis outages since start.', (s) => s.outages);
    this.mirror('tandem_pubsub_catch_ups_total', 'Catch-up passes after a Redis outage.', (s) => s.catchUps);
    this.mirror('tandem_pubsub_catch_up_ops_total', 'Ops catch-up passes re-delivered to local subscribers.', (s) => s.catchUpOps);
    new Gauge({
      name: 'tandem_pubsub_up',
      help: '1 while the pub/sub answers (Redis connected and caught up, or in-process), else 0.',
      labelNames: ['kind', 'status'],
      registers,
      async collect() {
        const state = sources.pubsubState();
        this.reset();
        this.set({ kind: state.kind, status: state.status }, (await answers(sources.pingPubSub, 1_000)) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tandem_store_up',
      help: '1 while the store answers a ping within 1 s, else 0.',
      labelNames: ['kind'],
      registers,
      async collect() {
        this.set({ kind: sources.storageState().kind }, (await answers(sources.pingStore, 1_000)) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tandem_store_pool_connections',
      help: 'PostgreSQL pool: connections open (total), idle, and requests waiting for one.',
      labelNames: ['state'],
      registers,
      collect() {
        const pool = sources.storageState().pool;
        if (!pool) return;
        for (const [state, count] of Object.entries(pool)) this.set({ state }, count);
      },
    });
    this.currentState(
      'tandem_store_group_commit',
      'SQLite group commit: 1 for the current state (on, paused, off).',
      'state',
      () => sources.storageState().groupCommit,
    );
    this.currentState(
      'tandem_store_wal_checkpoints',
      'SQLite WAL checkpoints: 1 for where they run (background: a thread of their own; inline: in the committing connection, as configured or because the thread failed).',
      'mode',
      () => sources.storageState().walCheckpoints?.mode,
    );
    new Gauge({
      name: 'tandem_snapshot_cache',
      help: 'Snapshot cache (SNAPSHOT_CACHE_MB): documents held and their JSON bytes; on SQLite also documents with versions not yet written to their snapshot row, and timed snapshot writes that failed since start.',
      labelNames: ['measure'],
      registers,
      collect() {
        const cache = sources.storageState().snapshotCache;
        this.reset();
        if (cache) for (const [measure, value] of Object.entries(cache)) this.set({ measure }, value);
      },
    });
    this.countPublishes(sources.pubsub);
  }

  /** Called by the backend when a submit finished. */
  readonly observeSubmit = (outcome: SubmitOutcome): void => {
    this.retries.inc(outcome.retries);
    this.ackSeconds.observe(outcome.totalMs / 1000);
    if (outcome.result === 'committed') {
      this.commits.inc({ collection: this.collections.value(outcome.collection) });
      this.commitSeconds.observe(outcome.submitMs / 1000);
    } else if (outcome.result === 'duplicate') {
      this.duplicates.inc();
    } else {
      this.rejected.inc({ code: codeLabel(outcome.code, this.codes) });
    }
  };

  /** Called for every refusal the transports log (RefusalLog). */
  readonly observeRefusal = (code: string, action: string | undefined): void => {
    this.refusals.inc({ code: codeLabel(code, this.codes), action: action && /^[\w:-]{1,32}$/.test(action) ? action : OTHER });
  };

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const merged = Registry.merge([processMetrics(), this.registry]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }

  /** A gauge at 1 for the one value `read` gives now (none when it gives undefined). */
  private currentState(name: string, help: string, label: string, read: () => string | undefined): void {
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        const value = read();
        this.reset();
        if (value) this.set({ [label]: value }, 1);
      },
    });
  }

  /** A counter that follows a running total kept elsewhere (the pub/sub's state). */
  private mirror(name: string, help: string, read: (state: PubSubState) => number): void {
    const { pubsubState } = this.sources;
    let last = 0;
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        const now = read(pubsubState());
        if (now > last) this.inc(now - last);
        last = now;
      },
    });
  }

  private countPublishes(pubsub: ShareDB.PubSub): void {
    const published = this.published;
    // ShareDB calls publish() once per committed op (and presence); counted, then passed on.
    const original = pubsub.publish.bind(pubsub);
    pubsub.publish = ((...args: Parameters<typeof original>) => {
      published.inc();
      return original(...args);
    }) as typeof pubsub.publish;
  }
}
