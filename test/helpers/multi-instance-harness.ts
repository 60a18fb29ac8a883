/**
 * Shared by the multi-instance, Redis-outage and drain tests: N real server processes on
 * one store and (optionally) one Redis of our own, clients spread over them, writers that
 * record which ops were acknowledged, and a check that every acknowledged op is in the
 * store exactly once and every client shows the store's document.
 *
 * Everything started here is stopped by `Cluster.destroy()`, which never throws, so an
 * `afterEach` calling it leaks nothing even after a failed test.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SocketConnection } from '../../client/connect.js';
import { ops } from '../../ot-types/index.js';
import { create, fetchDoc, socketClient, subscribe, whenNothingPending, type Doc } from './clients.js';
import { startServerProcess, type ServerProcess } from './process-server.js';
import { redisServerAvailable, startTestRedis, type TestRedis } from './redis-server.js';
import { requireService } from './skip.js';
import { waitFor } from './wait.js';

export interface ClusterOptions {
  instances: number;
  /** Start a redis-server of our own and give every instance REDIS_URL. Default true. */
  redis?: boolean;
  /** Store shared by all instances; default a fresh SQLite file in a temp folder. */
  dbUrl?: string;
  env?: Record<string, string>;
}

/**
 * Mocha hooks for a describe block whose tests each start one cluster: redis-server is
 * required (the test fails in CI, skips loudly elsewhere), and the cluster a test started is
 * destroyed after it, even when the test failed. Returns the function that starts it.
 */
export function useClusterPerTest(): (options: ClusterOptions) => Promise<Cluster> {
  let cluster: Cluster | null = null;
  beforeEach(function () {
    requireService(this, redisServerAvailable(), 'redis-server not installed');
  });
  afterEach(async () => {
    await cluster?.destroy();
    cluster = null;
  });
  return async (options) => (cluster = await Cluster.start(options));
}

export class Cluster {
  readonly servers: ServerProcess[] = [];
  private readonly clients: SocketConnection[] = [];

  private constructor(
    readonly dir: string,
    readonly dbUrl: string,
    readonly redis: TestRedis | null,
  ) {}

  static async start(options: ClusterOptions): Promise<Cluster> {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-cluster-'));
    let redis: TestRedis | null = null;
    let cluster: Cluster | null = null;
    try {
      if (options.redis ?? true) redis = await startTestRedis();
      cluster = new Cluster(dir, options.dbUrl ?? `sqlite:${join(dir, 'shared.db')}`, redis);
      const env: Record<string, string> = {
        DB_URL: cluster.dbUrl,
        // Unique per cluster, so a Redis shared with anything else never crosses streams.
        REDIS_PREFIX: `test-${process.pid}-${Date.now()}`,
        SHUTDOWN_TIMEOUT_MS: '5000',
        ...(redis ? { REDIS_URL: redis.url } : {}),
        ...options.env,
      };
      // The first instance alone creates the store (SQLite file, WAL mode, schema); the
      // others then start in parallel to keep the tests short.
      const starting = [startServerProcess(env)];
      await starting[0];
      for (let i = 1; i < options.instances; i++) starting.push(startServerProcess(env));
      const started = await Promise.allSettled(starting);
      for (const result of started) if (result.status === 'fulfilled') cluster.servers.push(result.value);
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      return cluster;
    } catch (err) {
      if (cluster) await cluster.destroy();
      else {
        await redis?.destroy().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      }
      throw err;
    }
  }

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** A socket.io client whose URL list starts at instance `first` and rotates through the rest. */
  client(first: number): SocketConnection {
    const urls = this.urls;
    const rotated = [...urls.slice(first), ...urls.slice(0, first)];
    const client = socketClient(rotated[0]!, { url: rotated });
    this.clients.push(client);
    return client;
  }

  /** Log lines of instance `i` with the given message. */
  logged(i: number, msg: string): Array<Record<string, unknown>> {
    return this.servers[i]!.logs.filter((entry) => entry.msg === msg);
  }

  async destroy(): Promise<void> {
    for (const client of this.clients.splice(0)) {
      try {
        client.close();
      } catch {
        // already closed
      }
    }
    await Promise.all(this.servers.map((s) => s.kill().catch(() => undefined)));
    await this.redis?.destroy().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One client editing one document in a closed loop: a few list inserts of unique tokens,
 * wait until ShareDB has them acknowledged, repeat. A token is recorded as acknowledged only
 * in the submit callback without error, so `acked` is exactly what the server confirmed.
 */
export class Writer {
  readonly acked: string[] = [];
  /** ShareDB's error objects ({code, message}), not necessarily `Error` instances. */
  readonly errors: Array<{ code?: unknown; message: string }> = [];
  private n = 0;
  private running: Promise<void> | null = null;
  private stopping = false;

  constructor(
    readonly name: string,
    readonly doc: Doc,
    private readonly batch = 2,
  ) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops after the current batch is acknowledged. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = null;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      for (let i = 0; i < this.batch; i++) this.submitOne();
      await whenNothingPending(this.doc);
      // Yield to the event loop so many writers interleave instead of one starving others.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private submitOne(): void {
    const token = `${this.name}:${this.n++}`;
    const items = (this.doc.data as { items?: unknown[] } | undefined)?.items ?? [];
    // Position from the token number: deterministic, and spreads inserts over the list.
    const position = (this.n * 7919) % (items.length + 1);
    this.doc.submitOp(ops.insert(['items', position], token), {}, (err) => {
      if (err) this.errors.push(err);
      else this.acked.push(token);
    });
  }
}

export function totalAcked(writers: readonly Writer[]): number {
  return writers.reduce((sum, w) => sum + w.acked.length, 0);
}

/** Creates `collection/id` as `{items: []}` through a client, and returns its subscribed doc. */
export async function createSharedDoc(client: SocketConnection, collection: string, id: string): Promise<Doc> {
  const doc = client.connection.get(collection, id);
  await subscribe(doc);
  if (doc.type === null) await create(doc, { items: [] });
  return doc;
}

export async function subscribedDoc(client: SocketConnection, collection: string, id: string): Promise<Doc> {
  const doc = client.connection.get(collection, id);
  await subscribe(doc);
  return doc;
}

/** The store's view of a document, fetched by a fresh client of instance `url`. */
export async function storeSnapshot(url: string, collection: string, id: string): Promise<{ v: number; data: unknown }> {
  const client = socketClient(url);
  try {
    const doc = client.connection.get(collection, id);
    await fetchDoc(doc);
    return { v: doc.version ?? -1, data: structuredClone(doc.data) };
  } finally {
    client.close();
  }
}

/**
 * Waits until every doc equals the store's snapshot (fetched from `url`), then checks every
 * acknowledged token is in it exactly once. Returns how long convergence took.
 */
export async function assertConverged(
  url: string,
  collection: string,
  id: string,
  docs: readonly Doc[],
  acked: readonly string[],
  timeoutMs = 15_000,
): Promise<number> {
  const started = Date.now();
  const expected = await storeSnapshot(url, collection, id);
  await waitFor(() => docs.every((d) => d.version === expected.v && !d.hasWritePending()), {
    timeoutMs,
    what: () =>
      `${id}: every client at the store's version ${expected.v} with nothing pending (version/pending of each: ${docs.map((d) => `${d.version}/${d.hasWritePending()}`).join(', ')})`,
  });
  const took = Date.now() - started;
  for (const doc of docs) assert.deepEqual(doc.data, expected.data, `${id}: a client differs from the store`);
  const items = (expected.data as { items: string[] }).items;
  const counts = new Map<string, number>();
  for (const token of items) counts.set(token, (counts.get(token) ?? 0) + 1);
  const missing = acked.filter((token) => !counts.has(token));
  assert.deepEqual(missing, [], `${id}: acknowledged ops missing from the store`);
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([token]) => token);
  assert.deepEqual(duplicated, [], `${id}: ops applied twice`);
  return took;
}
