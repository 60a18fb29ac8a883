/**
 * PostgreSQL failing under real Tandem processes while SDK clients type: its connections
 * killed (pg_terminate_backend), PostgreSQL "down" (connections reset, new ones refused)
 * and PostgreSQL hanging (nothing answers). Instances report it in /readyz within the 2 s
 * budget; the clients' unacknowledged ops are resent and committed exactly once; nothing
 * acknowledged is lost — checked against the rows in PostgreSQL itself.
 *
 * The machine's PostgreSQL is shared and is never stopped: "down" and "hanging" are a TCP
 * proxy between Tandem and it (test/helpers/postgres-proxy.ts), and only backends opened
 * through this test's proxy are terminated (picked by their client port).
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { ops, type DocHandle, type OpRejection, type TandemClient, type TandemError } from '../../client/index.js';
import { storeSnapshot } from '../helpers/multi-instance-harness.js';
import { PG_TEST_URL, postgresUnavailable, TestSchemas } from '../helpers/postgres.js';
import { PostgresProxy } from '../helpers/postgres-proxy.js';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { redisServerAvailable, startTestRedis, type TestRedis } from '../helpers/redis-server.js';
import { counts, sdkClient } from '../helpers/sdk-clients.js';
import { requireService } from '../helpers/skip.js';
import { waitFor } from '../helpers/wait.js';

interface Items {
  items: string[];
}

/** Transient failures are retried quickly and often enough to outlast each outage here. */
const CLIENT_OPTIONS = { retryDelayMs: 50, maxRetries: 12 };
/** Per typist: bounds the run whatever the timing. */
const MAX_OPS = 600;
/**
 * A typist skips keystrokes while this many ops are unacknowledged: enough to show ops
 * piling up during an outage, and a backlog that drains in bounded time on a loaded machine.
 */
const MAX_PENDING = 60;

/**
 * One SDK client typing: a unique token appended every few ms, one server op per token
 * (composeOps false). ShareDB acknowledges a client's ops in order, so the acknowledged
 * tokens are the submitted ones minus the still pending tail.
 */
class Typist {
  readonly submitted: string[] = [];
  readonly rejected: OpRejection[] = [];
  readonly errors: TandemError[] = [];
  stalled: TandemError | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly name: string,
    readonly doc: DocHandle<Items>,
  ) {
    doc.on('rejected', (rejection) => this.rejected.push(rejection));
    doc.on('stalled', (error) => (this.stalled = error));
    doc.on('error', (error) => this.errors.push(error));
  }

  start(everyMs = 50): void {
    this.timer ??= setInterval(() => this.type(), everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get pending(): number {
    return this.doc.pendingCount;
  }

  get acked(): string[] {
    return this.submitted.slice(0, this.submitted.length - this.doc.pendingCount);
  }

  private type(): void {
    if (this.submitted.length >= MAX_OPS) return this.stop();
    if (this.doc.pendingCount >= MAX_PENDING) return;
    const token = `${this.name}-${this.submitted.length}`;
    this.doc.submit(ops.insert(['items', this.doc.data!.items.length], token));
    this.submitted.push(token);
  }
}

const totalAcked = (typists: readonly Typist[]) => typists.reduce((n, t) => n + t.acked.length, 0);

function withSchema(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('schema', schema);
  return parsed.href;
}

async function readyz(url: string): Promise<{ status: number; ms: number; body: { status: string; checks?: Record<string, string> } }> {
  const started = Date.now();
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; checks?: Record<string, string> };
  return { status: res.status, ms: Date.now() - started, body };
}

describe('PostgreSQL outage: connections killed, server down or hanging, under real processes and typing SDK clients', function () {
  this.timeout(60_000);
  const schemas = new TestSchemas();
  let admin: pg.Client | null = null;
  /** Holds a document's snapshot row locked, so Tandem's commits of it wait in PostgreSQL. */
  let locker: pg.Client | null = null;
  const servers: ServerProcess[] = [];
  const proxies: PostgresProxy[] = [];
  const closers: Array<() => Promise<void>> = [];
  const typists: Typist[] = [];
  let redis: TestRedis | null = null;

  before(async function () {
    const reason = await postgresUnavailable();
    requireService(this, reason === null, reason ?? '');
    admin = new pg.Client({ connectionString: PG_TEST_URL, application_name: 'tandem-outage-test' });
    locker = new pg.Client({ connectionString: PG_TEST_URL, application_name: 'tandem-outage-test' });
    for (const client of [admin, locker]) {
      // Reported by the query that hits it; without a listener an idle error would crash mocha.
      client.on('error', () => undefined);
      await client.connect();
    }
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await locker?.end().catch(() => undefined);
    await schemas.dropAll();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      // What each side was doing when it failed: the clients' queues, the instances' last words.
      for (const t of typists) {
        console.log(
          `      ${t.name}: typed ${t.submitted.length}, pending ${t.pending}, v${t.doc.version}, stalled ${t.stalled?.code ?? 'no'}, errors ${t.errors.map((e) => e.code).join(' ') || 'none'}`,
        );
      }
      for (const s of servers) {
        const exit = s.child.exitCode ?? s.child.signalCode ?? 'running';
        console.log(
          `      ${s.url} (${exit}): ${s.stderr().slice(-2000)} ${JSON.stringify(s.logs.filter((l) => Number(l.level) >= 40).slice(-5))}`,
        );
      }
    }
    for (const t of typists.splice(0)) t.stop();
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    await Promise.all(servers.splice(0).map((s) => s.kill()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await redis?.destroy().catch(() => undefined);
    redis = null;
  });

  async function proxied(): Promise<{ proxy: PostgresProxy; schema: string; dbUrl: string }> {
    const proxy = await PostgresProxy.start(PG_TEST_URL);
    proxies.push(proxy);
    const schema = schemas.name();
    return { proxy, schema, dbUrl: withSchema(proxy.url(PG_TEST_URL), schema) };
  }

  async function start(env: Record<string, string>): Promise<ServerProcess> {
    const server = await startServerProcess({ SHUTDOWN_TIMEOUT_MS: '5000', ...env });
    servers.push(server);
    return server;
  }

  /** `clients` typists on notes/`id`, each with its own SDK client of `urls[i % urls.length]`. */
  async function typistsOn(urls: readonly string[], id: string, clients: number): Promise<Typist[]> {
    const made: Typist[] = [];
    for (let i = 0; i < clients; i++) {
      const client: TandemClient = sdkClient(urls[i % urls.length]!, closers, CLIENT_OPTIONS);
      const doc = client.doc<Items>('notes', id, i === 0 ? { create: { items: [] }, composeOps: false } : { composeOps: false });
      await doc.ready;
      if (i === 0) await doc.whenSynced();
      await waitFor(() => doc.exists, { what: `client ${i} has notes/${id}` });
      made.push(new Typist(`c${i}`, doc));
    }
    typists.push(...made);
    return made;
  }

  /** What PostgreSQL itself holds for notes/`id`: the snapshot, and the ops' versions and ids. */
  async function stored(schema: string, id: string) {
    const q = pg.escapeIdentifier(schema);
    const snapshot = await admin!.query<{ v: number; data: Items }>(
      `SELECT v, data FROM ${q}.tandem_snapshots WHERE collection = 'notes' AND id = $1`,
      [id],
    );
    const opRows = await admin!.query<{ v: number; src: string | null; seq: string | null }>(
      `SELECT v, src, seq FROM ${q}.tandem_ops WHERE collection = 'notes' AND id = $1 ORDER BY v`,
      [id],
    );
    return { v: snapshot.rows[0]!.v, data: snapshot.rows[0]!.data, ops: opRows.rows };
  }

  /**
   * Runs `during` while notes/`id`'s snapshot row is locked, once at least one of Tandem's
   * commits (on the proxy's connections) waits for that lock in PostgreSQL: a commit is
   * certainly in flight. The lock is released afterwards, whatever happened.
   */
  async function whileCommitsWait<T>(schema: string, id: string, proxy: PostgresProxy, during: () => Promise<T>, commits = 1): Promise<T> {
    await locker!.query('BEGIN');
    try {
      await locker!.query(
        `SELECT 1 FROM ${pg.escapeIdentifier(schema)}.tandem_snapshots WHERE collection = 'notes' AND id = $1 FOR UPDATE`,
        [id],
      );
      await waitFor(
        async () => {
          const waiting = await admin!.query(
            `SELECT pid FROM pg_stat_activity
              WHERE application_name = 'tandem' AND client_port = ANY($1::int[]) AND wait_event_type = 'Lock'`,
            [proxy.upstreamPorts()],
          );
          return (waiting.rowCount ?? 0) >= commits;
        },
        { timeoutMs: 10_000, intervalMs: 5, what: `${commits} commit(s) waiting for the row lock` },
      );
      return await during();
    } finally {
      await locker!.query('ROLLBACK');
    }
  }

  /**
   * Stops typing, waits for every client to be acknowledged, then checks PostgreSQL's rows:
   * every token typed is in the document exactly once (in particular each one acknowledged
   * at `ackedAt` moments), the op log is gapless with no src/seq twice, and every client
   * and every instance show exactly what PostgreSQL holds.
   */
  async function checkExactlyOnce(
    schema: string,
    id: string,
    all: readonly Typist[],
    urls: readonly string[],
    ackedAt: ReadonlyArray<readonly string[]>,
  ) {
    for (const t of all) t.stop();
    await Promise.all(all.map((t) => t.doc.whenSynced()));
    for (const t of all) {
      assert.deepEqual(t.rejected, [], `${t.name}: no op refused`);
      assert.equal(t.stalled, null, `${t.name}: never stalled`);
    }
    const db = await stored(schema, id);
    const tokens = db.data.items;
    const typed = all.flatMap((t) => t.submitted);
    const seen = counts(tokens);
    assert.deepEqual(
      typed.filter((token) => !seen.has(token)),
      [],
      'typed ops missing from PostgreSQL',
    );
    assert.deepEqual(
      [...seen].filter(([, n]) => n > 1).map(([token]) => token),
      [],
      'ops committed twice',
    );
    assert.equal(tokens.length, typed.length, 'nothing but the typed ops');
    for (const acked of ackedAt)
      assert.deepEqual(
        acked.filter((token) => !seen.has(token)),
        [],
        'acknowledged ops lost',
      );
    // Version 0 is the create; one op row per version, each (src, seq) once.
    assert.equal(db.v, typed.length + 1);
    assert.deepEqual(
      db.ops.map((o) => o.v),
      Array.from({ length: db.v }, (_, v) => v),
      'a gapless op log',
    );
    const ids = counts(db.ops.filter((o) => o.src !== null).map((o) => `${o.src}:${o.seq}`));
    assert.deepEqual(
      [...ids].filter(([, n]) => n > 1),
      [],
      'no (src, seq) committed twice',
    );
    // A client's own ops are acknowledged (whenSynced); the other instance's last ops reach it
    // through Redis a moment later.
    await waitFor(() => all.every((t) => t.doc.version === db.v), {
      what: "every client at PostgreSQL's version",
    }).catch(() => undefined); // the assertions below name the client that lags
    for (const t of all) {
      assert.equal(t.doc.version, db.v, `${t.name} at PostgreSQL's version`);
      assert.deepEqual(t.doc.data, db.data, `${t.name} shows PostgreSQL's document`);
    }
    for (const url of urls)
      assert.deepEqual(await storeSnapshot(url, 'notes', id), { v: db.v, data: db.data }, `${url} serves PostgreSQL's document`);
    return db;
  }

  function assertHealthy(server: ServerProcess): void {
    assert.equal(server.child.exitCode, null, 'the instance is still running');
    assert.equal(server.child.signalCode, null, 'the instance is still running');
    assert.deepEqual(server.nonJson, [], 'every stdout line is a JSON log line');
    assert.equal(server.stderr(), '', 'nothing on stderr');
    assert.deepEqual(
      server.logs.filter((l) => Number(l.level) >= 60),
      [],
      'no fatal log line',
    );
  }

  it('pg_terminate_backend of every Tandem connection, four times, while two instances take typing: every op committed exactly once', async function () {
    requireService(this, redisServerAvailable(), 'redis-server not installed');
    redis = await startTestRedis();
    const { proxy, schema, dbUrl } = await proxied();
    const env = { DB_URL: dbUrl, REDIS_URL: redis.url, REDIS_PREFIX: `pg-outage-${process.pid}-${Date.now()}` };
    const instances = await Promise.all([start(env), start(env)]);
    const urls = instances.map((s) => s.url);
    for (const url of urls) await waitFor(async () => (await readyz(url)).status === 200, { what: `${url} ready` });

    const all = await typistsOn(urls, 'terminated', 4);
    for (const t of all) t.start();
    const ackedAt: string[][] = [];
    const killed: number[] = [];
    let mark = 0;
    for (let round = 0; round < 4; round++) {
      // Committing again (and at a pace) before each kill: the last one was recovered from.
      await waitFor(() => totalAcked(all) >= mark + 30, { timeoutMs: 15_000, what: `30 more acknowledged ops before kill ${round + 1}` });
      ackedAt.push(all.flatMap((t) => t.acked));
      // Killed mid-commit for certain: the commits wait for a row lock when the kill comes.
      // Two of them at least (the typists of both instances commit to this document): with
      // one, a loaded run once found a round where the other instance's pool had not yet
      // reconnected, and only one backend was there to terminate.
      const result = await whileCommitsWait(
        schema,
        'terminated',
        proxy,
        () =>
          // The backends are picked first (MATERIALIZED), then terminated: in one WHERE clause
          // PostgreSQL may call pg_terminate_backend before the other conditions rule a row out.
          admin!.query<{ pid: number; terminated: boolean }>(
            `WITH mine AS MATERIALIZED (
             SELECT pid FROM pg_stat_activity
              WHERE application_name = 'tandem' AND client_port = ANY($1::int[]) AND pid <> pg_backend_pid()
           )
           SELECT pid, pg_terminate_backend(pid) AS terminated FROM mine`,
            [proxy.upstreamPorts()],
          ),
        2,
      );
      killed.push(result.rows.filter((r) => r.terminated).length);
      mark = totalAcked(all);
    }
    await waitFor(() => totalAcked(all) >= mark + 30, { timeoutMs: 15_000, what: '30 acknowledged ops after the last kill' });
    assert.ok(
      killed.every((n) => n >= 2),
      `each round terminated Tandem's backends (${killed.join(', ')})`,
    );

    const db = await checkExactlyOnce(schema, 'terminated', all, urls, ackedAt);
    for (const url of urls) assert.equal((await readyz(url)).status, 200);
    for (const server of instances) assertHealthy(server);
    const docErrors = all.flatMap((t) => t.errors.map((e) => e.code));
    console.log(
      `      (${db.v - 1} ops, ${killed.join('+')} backends terminated, ${proxy.accepted} connections opened, document error events: ${docErrors.join(' ') || 'none'})`,
    );
  });

  it('PostgreSQL down (connections reset, new ones refused), then hanging: /readyz 503 within 2 s, ops pending, then all committed exactly once', async () => {
    const { proxy, schema, dbUrl } = await proxied();
    const server = await start({ DB_URL: dbUrl });
    await waitFor(async () => (await readyz(server.url)).status === 200, { what: 'ready' });
    const all = await typistsOn([server.url], 'down', 2);
    for (const t of all) t.start();
    const ackedAt: string[][] = [];

    for (const mode of ['refuse', 'hang'] as const) {
      await waitFor(() => totalAcked(all) >= 30 + ackedAt.flat().length, {
        timeoutMs: 15_000,
        what: `acknowledged ops before the ${mode} cut`,
      });
      ackedAt.push(all.flatMap((t) => t.acked));
      const pendingAtCut = all.map((t) => t.pending);
      proxy.cut(mode);
      const cutAt = Date.now();
      // Reported within the readiness budget, and every probe answers within it.
      const probes: Array<Awaited<ReturnType<typeof readyz>>> = [];
      await waitFor(
        async () => {
          const probe = await readyz(server.url);
          probes.push(probe);
          return probe.status === 503;
        },
        { timeoutMs: 5_000, what: `/readyz 503 once PostgreSQL is ${mode === 'refuse' ? 'down' : 'hanging'}` },
      );
      assert.ok(Date.now() - cutAt < 2_500, `503 within 2.5 s of the cut (took ${Date.now() - cutAt} ms)`);
      // Clients keep typing; their ops stay pending; readiness keeps answering in time.
      await waitFor(() => all.every((t, i) => t.pending >= Math.min(pendingAtCut[i]! + 20, MAX_PENDING)), {
        timeoutMs: 10_000,
        what: 'ops pending while PostgreSQL is out',
      });
      probes.push(await readyz(server.url));
      const last = probes.at(-1)!;
      assert.equal(last.status, 503, `still 503 while ${mode}`);
      assert.equal(last.body.status, 'not ready');
      for (const probe of probes) assert.ok(probe.ms < 2_500, `/readyz answered in ${probe.ms} ms (${mode})`);

      proxy.restore();
      await waitFor(async () => (await readyz(server.url)).status === 200, {
        timeoutMs: 10_000,
        what: `/readyz 200 after the ${mode} cut`,
      });
      const typedAtRestore = all.map((t) => t.submitted.length);
      await waitFor(() => all.every((t, i) => t.acked.length >= typedAtRestore[i]!), {
        timeoutMs: 15_000,
        what: `every op typed during the ${mode} cut acknowledged`,
      });
    }
    await checkExactlyOnce(schema, 'down', all, [server.url], ackedAt);
    assertHealthy(server);
  });

  it('commits done but their answers lost, those connections dead for good: the statements time out, the ops are resent and not committed twice', async () => {
    // A failover or a lost NAT entry: nothing resets the old connections. Without a read
    // timeout a commit on one would hold its document's submit queue for good while
    // /readyz, on fresh connections, says ready; with it, the op is resent, and ShareDB's
    // src/seq check must recognise it as committed.
    const { proxy, schema, dbUrl } = await proxied();
    const server = await start({ DB_URL: dbUrl });
    await waitFor(async () => (await readyz(server.url)).status === 200, { what: 'ready' });
    const all = await typistsOn([server.url], 'unanswered', 2);
    for (const t of all) t.start();
    await waitFor(() => totalAcked(all) >= 30, { timeoutMs: 15_000, what: 'acknowledged ops before the cut' });
    const ackedAt = [all.flatMap((t) => t.acked)];
    const pendingAtCut = all.map((t) => t.pending);
    // Commits wait for the lock, the answers are cut, the lock goes: they commit unanswered.
    await whileCommitsWait(schema, 'unanswered', proxy, async () => proxy.cut('lose-answers'));
    const known = () => Math.max(...all.map((t) => t.doc.version!));
    await waitFor(async () => (await stored(schema, 'unanswered')).v > known(), { what: 'PostgreSQL ahead of every client' });
    // The ops PostgreSQL committed that no client was told of (an op row's v is the version
    // it applied to): each must end up there once.
    const unanswered = (await stored(schema, 'unanswered')).ops.filter((o) => o.v >= known()).map((o) => `${o.src}:${o.seq}`);
    assert.ok(unanswered.length >= 1);
    await waitFor(() => all.every((t, i) => t.pending >= Math.min(pendingAtCut[i]! + 20, MAX_PENDING)), {
      timeoutMs: 10_000,
      what: 'ops pending meanwhile',
    });
    const probe = await readyz(server.url);
    assert.equal(probe.status, 503, 'no answers: not ready');
    assert.ok(probe.ms < 2_500, `/readyz answered in ${probe.ms} ms`);
    proxy.restore({ strand: true });
    await waitFor(async () => (await readyz(server.url)).status === 200, { timeoutMs: 10_000, what: '/readyz 200 on fresh connections' });
    const typedAtRestore = all.map((t) => t.submitted.length);
    // The read timeout (10 s) frees the stranded commits; then the backlog drains.
    await waitFor(() => all.every((t, i) => t.acked.length >= typedAtRestore[i]!), {
      timeoutMs: 25_000,
      what: 'every op typed meanwhile acknowledged',
    });
    const db = await checkExactlyOnce(schema, 'unanswered', all, [server.url], ackedAt);
    const ids = counts(db.ops.map((o) => `${o.src}:${o.seq}`));
    assert.deepEqual(
      unanswered.filter((id) => ids.get(id) !== 1),
      [],
      'each unanswered commit exactly once',
    );
    // A resend of such an op is answered as already committed, unless its client learned
    // of it first (the op echoed back while catching up); either way it commits once.
    const metrics = (await (await fetch(`${server.url}/metrics.json`)).json()) as { duplicates: number };
    console.log(`      (${unanswered.length} commits unanswered, ${metrics.duplicates} resends recognised as committed)`);
    assertHealthy(server);
  });

  it('PostgreSQL hanging from start-up: a warning, /readyz 503 within 2.5 s every time, ready once it answers', async () => {
    const { proxy, dbUrl } = await proxied();
    proxy.cut('hang');
    const server = await start({ DB_URL: dbUrl });
    for (let i = 0; i < 2; i++) {
      const probe = await readyz(server.url);
      assert.equal(probe.status, 503);
      assert.ok(probe.ms < 2_500, `/readyz answered in ${probe.ms} ms`);
    }
    await waitFor(() => server.logs.some((l) => String(l.msg).startsWith('store unreachable')), { what: 'the start-up warning' });
    proxy.restore();
    await waitFor(async () => (await readyz(server.url)).status === 200, {
      timeoutMs: 10_000,
      what: '/readyz 200 once PostgreSQL answers',
    });
    const [t] = await typistsOn([server.url], 'late', 1);
    t!.doc.submit(ops.insert(['items', 0], 'first'));
    await t!.doc.whenSynced();
    assert.deepEqual(await storeSnapshot(server.url, 'notes', 'late'), { v: 2, data: { items: ['first'] } });
    assertHealthy(server);
  });
});
