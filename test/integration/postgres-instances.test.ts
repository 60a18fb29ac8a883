/**
 * PostgreSQL behind several real server processes: every instance has DB_URL=postgres://…
 * ?schema=<one fresh schema> (the same for all, migrated by whichever instance gets there
 * first: they all start at once) and REDIS_URL of one redis-server of our own. SDK clients
 * (client/index.ts) get the instance URLs rotated, so they start on different instances and
 * fail over along the list.
 *
 * 1. Seeded fuzz: SDK clients spread over three instances submit random json1 ops
 *    (test/fuzz/gen-op.ts) to two shared documents, go offline and come back; at the end
 *    every client, every instance and PostgreSQL itself (read with SQL, not through the
 *    adapter) hold the same document, which equals a replay of the stored op log with no
 *    op (src/seq) committed twice.
 * 2. SIGKILL of one instance mid-run: its clients move to the others, and every op
 *    acknowledged before the kill (and every other op) is in the final document exactly once.
 * 3. A hot document written through two instances at once: every op committed exactly once,
 *    and ShareDB's commit retries (/metrics `commitRetries`) stay within a proven bound.
 *
 * Env: PG_FUZZ_SEED=<n>[,<n>…] runs only these fuzz seeds; PG_FUZZ_OPS=<n> ops per seed.
 * A fuzz seed fixes every random choice, but ops are generated from each client's current
 * document, which depends on timing: a seed reproduces the same kind of run, not the same bytes.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { ops, type DocHandle, type TandemClient } from '../../client/index.js';
import { firstDifference, replayOps, type StoredOp } from '../fuzz/fuzz-clients.js';
import { initialDoc, OpGenerator, pickFocus, Rng, shuffled, type Json } from '../fuzz/gen-op.js';
import { storeSnapshot } from '../helpers/multi-instance-harness.js';
import { PG_TEST_URL, postgresUnavailable, TestSchemas } from '../helpers/postgres.js';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { redisServerAvailable, startTestRedis, type TestRedis } from '../helpers/redis-server.js';
import { counts, sdkClient } from '../helpers/sdk-clients.js';
import { requireService } from '../helpers/skip.js';
import { waitFor } from '../helpers/wait.js';

const FUZZ_SEEDS = process.env.PG_FUZZ_SEED ? process.env.PG_FUZZ_SEED.split(',').map((s) => Number(s.trim())) : [1, 2];
const FUZZ_OPS = Number(process.env.PG_FUZZ_OPS || 500);
const COLLECTION = 'pgmi';

/**
 * ShareDB's client logger (untyped, process-wide). A resent op that was committed before the
 * connection dropped is acked at its committed version without the ops before it; the
 * ShareDB client then warns "Invalid version from server" and fetches them (its recovery
 * path, see load/worker.ts). Counted here instead of printed; other warnings pass through.
 */
const sharedbLogger = createRequire(import.meta.url)('sharedb/lib/logger') as {
  warn: (...args: unknown[]) => void;
  setMethods(methods: { warn: (...args: unknown[]) => void }): void;
};
const resentAcks = { count: 0 };

/** Everything a test started, closed by afterEach whatever happened (clients first). */
const open: { closers: Array<() => Promise<void>>; servers: ServerProcess[]; redis: TestRedis | null } = {
  closers: [],
  servers: [],
  redis: null,
};

interface PgCluster {
  readonly schema: string;
  readonly servers: ServerProcess[];
  readonly urls: string[];
}

/** Redis, then `instances` processes started together on one fresh schema (concurrent migration). */
async function startCluster(schemas: TestSchemas, instances: number): Promise<PgCluster> {
  const schema = schemas.name();
  const redis = await startTestRedis();
  open.redis = redis;
  const dbUrl = new URL(PG_TEST_URL);
  dbUrl.searchParams.set('schema', schema);
  const env = {
    DB_URL: dbUrl.href,
    REDIS_URL: redis.url,
    REDIS_PREFIX: `pgmi-${process.pid}-${schema}`,
    // Every test client is one anonymous user (127.0.0.1): the default 6000 ops/min, shared
    // across instances through Redis, would throttle the fuzz instead of testing the store.
    OPS_PER_MINUTE: '1000000',
    // Three instances' pools plus the test's own connections, well under max_connections.
    PG_POOL_MAX: '6',
  };
  const started = await Promise.allSettled(Array.from({ length: instances }, () => startServerProcess(env)));
  for (const result of started) if (result.status === 'fulfilled') open.servers.push(result.value);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return { schema, servers: open.servers, urls: open.servers.map((s) => s.url) };
}

/** An SDK client whose URL list starts at instance `first`; its errors go to `errors`. */
function clientOn(cluster: PgCluster, first: number, errors: string[], name: string): TandemClient {
  const rotated = [...cluster.urls.slice(first), ...cluster.urls.slice(0, first)];
  const client = sdkClient(rotated[0]!, open.closers, { url: rotated });
  client.on('error', (err) => errors.push(`${name}: ${err.code}: ${err.message}`));
  return client;
}

/** Refusals and stalls are failures in every test here: the store must take every op. */
function watchHandle(handle: DocHandle<Json>, name: string, errors: string[]): DocHandle<Json> {
  handle.on('rejected', (r) => errors.push(`${name} ${handle.id} rejected ${r.code}: ${r.message}`));
  handle.on('stalled', (e) => errors.push(`${name} ${handle.id} stalled ${e.code}: ${e.message}`));
  handle.on('error', (e) => errors.push(`${name} ${handle.id} error ${e.code}: ${e.message}`));
  return handle;
}

/**
 * Waits until every handle is ready and shows the document. Handles opened together with the
 * creating one mostly subscribe before the create is committed (on another instance), and
 * get it through Redis a little after their `ready`.
 */
async function whenAllExist(handles: ReadonlyArray<DocHandle<Json>>): Promise<void> {
  await Promise.all(handles.map((h) => h.ready));
  await waitFor(() => handles.every((h) => h.exists), {
    timeoutMs: 10_000,
    what: `every client sees the created document (${handles.filter((h) => !h.exists).length} do not)`,
  });
}

/** The document as PostgreSQL holds it, read with SQL: snapshot row and op log. */
async function readFromPostgres(schema: string, id: string): Promise<{ snapshot: { v: number; data: Json }; log: StoredOp[] }> {
  const client = new pg.Client({ connectionString: PG_TEST_URL });
  await client.connect();
  try {
    const s = pg.escapeIdentifier(schema);
    const snap = await client.query<{ v: number; data: Json }>(
      `SELECT v, data FROM ${s}.tandem_snapshots WHERE collection = $1 AND id = $2`,
      [COLLECTION, id],
    );
    const rows = await client.query<{ v: number; op: StoredOp }>(
      `SELECT v, op FROM ${s}.tandem_ops WHERE collection = $1 AND id = $2 ORDER BY v`,
      [COLLECTION, id],
    );
    assert.equal(snap.rows.length, 1, `${id}: no snapshot row in PostgreSQL`);
    return { snapshot: snap.rows[0]!, log: rows.rows.map((row) => ({ ...row.op, v: row.v })) };
  } finally {
    await client.end();
  }
}

/**
 * PostgreSQL's snapshot equals its op log replayed (no op committed twice), every handle
 * reaches that version with that data, and every live instance serves it. Returns it.
 */
async function assertConvergedOnPostgres(
  cluster: PgCluster,
  id: string,
  handles: ReadonlyArray<DocHandle<Json>>,
  live: readonly string[],
): Promise<{ v: number; data: Json }> {
  const { snapshot, log } = await readFromPostgres(cluster.schema, id);
  const replayed = replayOps(log);
  if ('problem' in replayed) assert.fail(`${id}: stored op log: ${replayed.problem}`);
  assert.equal(replayed.v, snapshot.v, `${id}: op log length vs snapshot version`);
  assert.ok(
    isDeepStrictEqual(replayed.data, snapshot.data),
    `${id}: replayed op log differs from the snapshot at ${firstDifference(replayed.data, snapshot.data)}`,
  );
  await waitFor(() => handles.every((h) => h.version === snapshot.v && h.pendingCount === 0), {
    timeoutMs: 15_000,
    what: () =>
      `${id}: every client at PostgreSQL's version ${snapshot.v} with nothing pending (version/pending of each: ${handles.map((h) => `${h.version}/${h.pendingCount}`).join(', ')})`,
  });
  handles.forEach((h, i) => {
    assert.ok(
      isDeepStrictEqual(h.data, snapshot.data),
      `${id}: client ${i} differs from PostgreSQL at ${firstDifference(h.data, snapshot.data)}`,
    );
  });
  for (const url of live)
    assert.deepEqual(await storeSnapshot(url, COLLECTION, id), snapshot, `${id}: instance ${url} serves another snapshot`);
  return snapshot;
}

describe('postgres: three instances on one schema, one Redis', function () {
  // A bound on failure, not the budget: a test takes 5–15 s alone, up to ~30 s on a loaded 2-core machine.
  this.timeout(90_000);
  const schemas = new TestSchemas();

  const originalWarn = sharedbLogger.warn;
  before(async function () {
    requireService(this, redisServerAvailable(), 'redis-server not installed');
    const why = await postgresUnavailable();
    requireService(this, why === null, why ?? '');
    sharedbLogger.setMethods({
      warn: (...args: unknown[]) => {
        if (String(args[0]).startsWith('Invalid version from server')) resentAcks.count++;
        else originalWarn(...args);
      },
    });
  });

  afterEach(async () => {
    for (const close of open.closers.splice(0).reverse()) await close().catch(() => undefined);
    await Promise.all(open.servers.splice(0).map((s) => s.kill()));
    await open.redis?.destroy();
    open.redis = null;
  });

  after(async () => {
    sharedbLogger.setMethods({ warn: originalWarn });
    await schemas.dropAll();
  });

  for (const seed of FUZZ_SEEDS) {
    it(`fuzz seed ${seed}: 6 SDK clients over 3 instances, ${FUZZ_OPS} random ops on 2 documents, all converge with PostgreSQL`, async () => {
      const started = Date.now();
      const resent = resentAcks.count;
      try {
        const stats = await runFuzz(seed);
        console.log(
          `      seed ${seed}: ${stats.submitted} ops (${stats.offline} offline), ${stats.commits} commits, ${stats.toggles} offline toggles, ` +
            `${resentAcks.count - resent} acks of resent ops, ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      } catch (err) {
        const reproduce = `PG_FUZZ_SEED=${seed} PG_FUZZ_OPS=${FUZZ_OPS} npx mocha test/integration/postgres-instances.test.ts -g 'fuzz seed'`;
        throw Object.assign(err as Error, { message: `${(err as Error).message}\n  reproduce: ${reproduce}` });
      }
    });
  }

  async function runFuzz(seed: number): Promise<{ submitted: number; offline: number; commits: number; toggles: number }> {
    const cluster = await startCluster(schemas, 3);
    const rng = new Rng(seed);
    const errors: string[] = [];
    const docIds = [`fuzz${seed}-a`, `fuzz${seed}-b`];
    const init = docIds.map(() => initialDoc(rng));
    const fuzzers = Array.from({ length: 6 }, (_, i) => {
      const name = `c${i}@${i % 3}`;
      const client = clientOn(cluster, i % 3, errors, name);
      // Every other client sends one op per submit; the others let ShareDB compose queued ops.
      const handles = docIds.map((id, d) =>
        watchHandle(client.doc<Json>(COLLECTION, id, { composeOps: i % 2 === 0, ...(i === 0 ? { create: init[d]! } : {}) }), name, errors),
      );
      return { name, client, handles, gen: new OpGenerator(rng.fork()) };
    });
    const all = fuzzers.flatMap((f) => f.handles);
    await whenAllExist(all);

    const stats = { submitted: 0, offline: 0, commits: 0, toggles: 0 };
    while (stats.submitted < FUZZ_OPS) {
      // One shared target per document in most rounds, so concurrent ops conflict.
      const focus = docIds.map((_, d) => (rng.chance(0.6) ? pickFocus(rng, rng.pick(fuzzers).handles[d]!.data as Json) : null));
      for (const f of shuffled(rng, fuzzers)) {
        f.handles.forEach((h, d) => {
          if (!rng.chance(0.6)) return;
          for (let n = rng.range(1, 3); n > 0 && stats.submitted < FUZZ_OPS; n--) {
            if (h.data === undefined)
              assert.fail(`${f.name} ${h.id}: no data (version ${h.version}, pending ${h.pendingCount}); errors: ${errors.join('; ')}`);
            // Multi-part ops too (the generator's default share): checkOpAgainst reads their edits
            // in the document after their inserts and removals.
            const generated = f.gen.generate(h.data as Json, { focus: focus[d] });
            h.submit(generated.op);
            stats.submitted++;
            if (f.client.heldOffline) stats.offline++;
            if (!isDeepStrictEqual(h.data, generated.after)) {
              assert.fail(
                `${f.name} ${h.id}: local apply of ${generated.kind} ${JSON.stringify(generated.op)} differs from the generator at ${firstDifference(h.data, generated.after)}`,
              );
            }
          }
        });
      }
      assert.deepEqual(errors, []);
      // Let some (a random number) of the online clients' ops be acknowledged before the next
      // round, so it is generated while others are still in flight.
      const busy = fuzzers.filter((f) => !f.client.heldOffline).flatMap((f) => f.handles.filter((h) => h.pendingCount > 0));
      const chosen = shuffled(rng, busy).slice(0, rng.range(0, busy.length));
      await waitFor(() => chosen.every((h) => h.pendingCount === 0), {
        timeoutMs: 20_000,
        intervalMs: 2,
        what: `${chosen.length} clients acknowledged`,
      });
      for (const f of fuzzers) {
        if (f.client.heldOffline ? rng.chance(0.3) : rng.chance(0.04)) {
          if (f.client.heldOffline) f.client.goOnline();
          else f.client.goOffline();
          stats.toggles++;
        }
      }
    }

    for (const f of fuzzers) f.client.goOnline();
    await waitFor(() => fuzzers.every((f) => f.client.state === 'online') && all.every((h) => h.pendingCount === 0), {
      timeoutMs: 30_000,
      intervalMs: 5,
      what: 'every client online with nothing pending',
    });
    assert.deepEqual(errors, []);
    for (let d = 0; d < docIds.length; d++) {
      const snapshot = await assertConvergedOnPostgres(
        cluster,
        docIds[d]!,
        fuzzers.map((f) => f.handles[d]!),
        cluster.urls,
      );
      stats.commits += snapshot.v - 1;
    }
    return stats;
  }

  it('SIGKILL of one instance mid-run: its clients move to the others, every acknowledged op is in PostgreSQL exactly once', async () => {
    const cluster = await startCluster(schemas, 3);
    const resent = resentAcks.count;
    const errors: string[] = [];
    const connectErrors: string[] = []; // expected: clients of the dead instance fail to reach it
    const rng = new Rng(7);
    const clients = Array.from({ length: 6 }, (_, i) => clientOn(cluster, i % 3, connectErrors, `c${i}@${i % 3}`));
    const handles = clients.map((c, i) =>
      watchHandle(c.doc<Json>(COLLECTION, 'kill', i === 0 ? { create: { items: [] } } : {}), `c${i}`, errors),
    );
    await whenAllExist(handles);
    const writers = handles.map((h, i) => new TokenWriter(`w${i}`, h, rng.fork()));
    for (const w of writers) w.start();

    const progress = () =>
      writers
        .map(
          (w, i) => `${w.name}: ${w.acked.length}/${w.submitted.length} acked, ${handles[i]!.pendingCount} pending, ${clients[i]!.state}`,
        )
        .join('; ');
    await waitFor(() => writers.every((w) => w.acked.length >= 10), {
      timeoutMs: 20_000,
      what: '10 acknowledged tokens per writer before the kill',
    }).catch((err: Error) => {
      throw new Error(`${err.message} (${progress()}) ${[...errors, ...writers.flatMap((w) => w.errors)].join('; ')}`);
    });
    // Clients 0 and 3 started on instance 0: they must leave it and come back online elsewhere.
    const victims = [clients[0]!, clients[3]!];
    const leftDead = victims.map(() => false);
    victims.forEach((c, i) => c.on('state', (state) => state !== 'online' && (leftDead[i] = true)));
    const inFlightAtKill = [handles[0]!, handles[3]!].reduce((n, h) => n + h.pendingCount, 0);
    await cluster.servers[0]!.kill();
    const ackedAtKill = writers.flatMap((w) => [...w.acked]);
    const perWriterAtKill = writers.map((w) => w.acked.length);

    await waitFor(
      () =>
        leftDead.every(Boolean) &&
        clients.every((c) => c.state === 'online') &&
        writers.every((w, i) => w.acked.length >= perWriterAtKill[i]! + 20),
      { timeoutMs: 30_000, what: 'clients of the dead instance back online and 20 more acknowledged tokens per writer' },
    );
    await Promise.all(writers.map((w) => w.stop()));
    assert.deepEqual(
      writers.flatMap((w) => w.errors),
      [],
    );
    assert.deepEqual(errors, []);

    const snapshot = await assertConvergedOnPostgres(cluster, 'kill', handles, cluster.urls.slice(1));
    const stored = counts((snapshot.data as { items: string[] }).items);
    const lost = ackedAtKill.filter((token) => !stored.has(token));
    assert.deepEqual(lost, [], 'tokens acknowledged before the kill, missing from PostgreSQL');
    const submitted = writers.flatMap((w) => w.submitted);
    assert.deepEqual(
      submitted.filter((token) => !stored.has(token)),
      [],
      'tokens submitted (all since acknowledged) missing',
    );
    assert.deepEqual(
      [...stored].filter(([, n]) => n > 1),
      [],
      'tokens applied more than once',
    );
    assert.equal(stored.size, submitted.length, 'tokens nobody submitted');
    console.log(
      `      kill: ${ackedAtKill.length} tokens acknowledged before the kill (${inFlightAtKill} ops of its clients in flight), ${submitted.length} in all, ${resentAcks.count - resent} acks of resent ops, document v${snapshot.v}`,
    );
  });

  it('hot document written through two instances at once: every op committed once, commit retries within the bound', async () => {
    const WRITERS_PER_INSTANCE = 10;
    const MIN_ROUNDS = 8;
    const MAX_ROUNDS = 30;
    const cluster = await startCluster(schemas, 2);
    const errors: string[] = [];
    const clients = Array.from({ length: 2 * WRITERS_PER_INSTANCE }, (_, i) => clientOn(cluster, i % 2, errors, `c${i}@${i % 2}`));
    const handles = clients.map((c, i) =>
      watchHandle(c.doc<Json>(COLLECTION, 'hot', i === 0 ? { create: { items: [] } } : {}), `c${i}`, errors),
    );
    await whenAllExist(handles);
    const before = await Promise.all(cluster.urls.map(metrics));

    // Round by round, every writer has exactly one op in flight, all at once. More rounds
    // until both instances counted at least one retry (proof the commits really raced: with
    // PostgreSQL answering over a socket they do within a round or two), at most MAX_ROUNDS.
    const tokens: string[] = [];
    let after = before;
    let rounds = 0;
    while (rounds < MAX_ROUNDS) {
      handles.forEach((h, i) => {
        const token = `w${i}:${rounds}`;
        h.submit(ops.insert(['items', 0], token));
        tokens.push(token);
      });
      rounds++;
      await waitFor(() => handles.every((h) => h.pendingCount === 0), {
        timeoutMs: 20_000,
        intervalMs: 2,
        what: `round ${rounds} acknowledged`,
      });
      if (rounds < MIN_ROUNDS) continue;
      after = await Promise.all(cluster.urls.map(metrics));
      if (after.every((m, i) => m.commitRetries > before[i]!.commitRetries)) break;
    }
    assert.deepEqual(errors, []);
    const delta = after.map((m, i) => ({
      commits: m.commits - before[i]!.commits,
      retries: m.commitRetries - before[i]!.commitRetries,
      duplicates: m.duplicates - before[i]!.duplicates,
      rejected: m.rejected - before[i]!.rejected,
    }));
    console.log(
      `      hot doc: ${rounds} rounds, ${tokens.length} ops; commits ${delta.map((d) => d.commits).join(' + ')}, retries ${delta.map((d) => d.retries).join(' + ')}`,
    );

    // Exactly once: each instance committed its own writers' ops, none twice, none refused.
    assert.deepEqual(
      delta.map((d) => d.commits),
      [WRITERS_PER_INSTANCE * rounds, WRITERS_PER_INSTANCE * rounds],
    );
    assert.deepEqual(
      delta.map((d) => [d.duplicates, d.rejected]),
      [
        [0, 0],
        [0, 0],
      ],
    );
    const snapshot = await assertConvergedOnPostgres(cluster, 'hot', handles, cluster.urls);
    assert.equal(snapshot.v, 1 + tokens.length, 'one stored op per submitted op');
    const stored = counts((snapshot.data as { items: string[] }).items);
    assert.deepEqual(
      tokens.filter((t) => stored.get(t) !== 1),
      [],
      'tokens not stored exactly once',
    );
    assert.equal(stored.size, tokens.length);

    // The bound. Each instance queues submits per document (TandemBackend.submit), so at
    // any time it has at most one commit attempt on this document. An attempt fails only
    // when another instance committed after the attempt read the snapshot; the next attempt
    // reads a snapshot that includes that commit, so every failed attempt of instance A
    // consumes a different commit of instance B: retries(A) ≤ commits(B), and the other way
    // round — at most one retry per commit of the other instance, whatever the timing.
    assert.ok(
      delta[0]!.retries > 0 && delta[1]!.retries > 0,
      `no retry on one instance in ${rounds} rounds: did the instances race at all?`,
    );
    assert.ok(
      delta[0]!.retries <= delta[1]!.commits,
      `instance 0 retried ${delta[0]!.retries} times for ${delta[1]!.commits} commits of instance 1`,
    );
    assert.ok(
      delta[1]!.retries <= delta[0]!.commits,
      `instance 1 retried ${delta[1]!.retries} times for ${delta[0]!.commits} commits of instance 0`,
    );
  });
});

interface Metrics {
  commits: number;
  commitRetries: number;
  duplicates: number;
  rejected: number;
}

async function metrics(url: string): Promise<Metrics> {
  const response = await fetch(`${url}/metrics.json`);
  assert.equal(response.status, 200);
  return (await response.json()) as Metrics;
}

/**
 * One SDK client inserting unique tokens into `items` in a closed loop: 1–3 inserts at
 * seeded positions, then wait until the server acknowledged them (whenSynced), record them
 * as acknowledged, repeat. `acked` is therefore never ahead of what the server confirmed.
 */
class TokenWriter {
  readonly acked: string[] = [];
  readonly submitted: string[] = [];
  readonly errors: string[] = [];
  private n = 0;
  private running: Promise<void> | null = null;
  private stopping = false;

  constructor(
    readonly name: string,
    private readonly handle: DocHandle<Json>,
    private readonly rng: Rng,
  ) {}

  start(): void {
    this.running ??= this.loop().catch((err: Error) => void this.errors.push(`${this.name}: ${err.message}`));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const batch: string[] = [];
      for (let i = this.rng.range(1, 3); i > 0; i--) {
        const token = `${this.name}:${this.n++}`;
        const items = (this.handle.data as { items: string[] }).items;
        this.handle.submit(ops.insert(['items', this.rng.int(items.length + 1)], token));
        this.submitted.push(token);
        batch.push(token);
      }
      await this.handle.whenSynced();
      this.acked.push(...batch);
      // Yield so the writers interleave.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}
