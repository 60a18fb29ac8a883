/**
 * Query attacks of the resilience issue, on both transports (stock ShareDB client on
 * /sharedb, socket.io through connectSocket):
 *
 * - The bounded, sliced evaluation gives what mingo's own find/sort/skip/limit gives (seeded).
 * - On the wire (in-process server, small limits): refused queries and their codes —
 *   TANDEM_INVALID_QUERY for code, unknown operators, `$expr` beyond comparisons, oversized
 *   filters and every form of unsafe regular expression; TANDEM_QUERY_TOO_LARGE past
 *   MAX_QUERY_SCAN (unless the query names its documents by _id) and MAX_QUERY_RESULTS;
 *   TANDEM_RATE_LIMITED with retryAfterMs past QUERIES_PER_MINUTE; the application's own
 *   connection is not capped.
 * - Against a server in its own process with 20,000 documents in a collection: the
 *   catastrophic regex (`^(a+)+$` against a planted 30-character string blocked the event
 *   loop 9 s), refused queries ($where: every one used to read all 20,000 documents first,
 *   150–500 ms each), the caps with their codes, and 10 query subscriptions re-run after
 *   every op of another client (2.6 s per ack before). During and after each: /healthz
 *   answers within 1 s, RSS stays under RSS_BOUND_BYTES, and a bystander keeps committing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Query } from 'mingo';
import type { Doc } from 'sharedb/lib/client/index.js';
import { TandemErrorCode } from '../../client/protocol.js';
import { create, fetchDoc, submit } from '../helpers/clients.js';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { Rng } from '../fuzz/rng.js';
import { QueryRun } from '../../server/limits/query-run.js';
import { compileQuery, toMongoDoc, type QuerySnapshot } from '../../server/storage/mingo-query.js';
import { rssOf } from '../helpers/process-stats.js';
import { bystander, watchHealth, type BystanderReport, type HealthReport } from './limits-watch.js';
import {
  TRANSPORTS,
  codeOf,
  fetchQuery,
  openQueryClient,
  populate,
  subscribeQuery,
  type QueryClient,
  type Transport,
} from './query-clients.js';

const INVALID = TandemErrorCode.INVALID_QUERY;
const TOO_LARGE = TandemErrorCode.QUERY_TOO_LARGE;

/**
 * The documented bound: the attacked server process (20,000 documents of ~150 bytes in its
 * store; it idles at ~150 MB through tsx) stays under 400 MB of RSS. A query holds at most
 * one collection scan's matches at a time (MAX_QUERY_SCAN documents).
 */
const RSS_BOUND_BYTES = 400 * 1024 * 1024;
const BIG = 20_000;
const MB = (bytes: number) => `${Math.round(bytes / (1024 * 1024))} MB`;

/** Every way a client can put a regular expression or code into a query: all refused. */
const REFUSED_QUERIES: Array<[string, unknown]> = [
  ['$where', { $where: 'sleep(1000) || true' }],
  ['$expr building arrays', { $expr: { $gt: [{ $size: { $range: [0, 100_000_000] } }, 0] } }],
  ['$expr with strings', { $expr: { $eq: [{ $concat: ['$s', '$s'] }, ''] } }],
  ['$function', { n: { $function: { body: 'return true', args: [], lang: 'js' } } }],
  ['unknown operator', { n: { $near: [0, 0] } }],
  ['nested repetition', { s: { $regex: '^(a+)+$' } }],
  ['nested repetition under $not', { s: { $not: { $regex: '(x*)*y' } } }],
  ['nested repetition in $elemMatch', { tags: { $elemMatch: { $regex: '^(a|b+)*$' } } }],
  ['nested repetition in $all/$elemMatch', { tags: { $all: [{ $elemMatch: { $regex: '(.*)*' } }] } }],
  ['nested repetition inside $or', { $or: [{ n: 1 }, { s: { $regex: '((ab)*)+c' } }] }],
  ['regex object inside $in', { s: { $in: [{ $regex: '^(a+)+$' }] } }],
  ['backreference', { s: { $regex: '(a)\\1' } }],
  ['lookahead', { s: { $regex: 'a(?=b)' } }],
  ['too many repetitions', { s: { $regex: 'a?'.repeat(30) } }],
  ['unknown flag', { s: { $regex: 'a', $options: 'x' } }],
  ['pattern not a string', { s: { $regex: 5 } }],
  ['oversized filter', { n: { $in: Array.from({ length: 2000 }, (_, i) => i) } }],
];

function assertHealthy(health: HealthReport, others: BystanderReport, what: string): void {
  assert.ok(health.healthzChecks >= 2, `${what}: /healthz was polled (${health.healthzChecks})`);
  assert.ok(health.maxHealthzMs < 1000, `${what}: /healthz within 1 s (slowest ${Math.round(health.maxHealthzMs)} ms)`);
  assert.ok(health.maxRssBytes < RSS_BOUND_BYTES, `${what}: RSS ${MB(health.maxRssBytes)} under ${MB(RSS_BOUND_BYTES)}`);
  assert.deepEqual(others.errors, [], `${what}: the bystander's ops were all accepted`);
  assert.ok(others.commits >= 3, `${what}: the bystander kept committing (${others.commits})`);
}

/** How long each attack runs (while /healthz, RSS and the bystander are watched). */
const ATTACK_MS = 2000;

/**
 * Runs `round` again and again for ATTACK_MS, a round at most every `everyMs` (the
 * attacker's cadence: QUERIES_PER_MINUTE would otherwise refuse most of its queries).
 */
async function repeatFor<T>(round: () => Promise<T>, everyMs = 100): Promise<T[]> {
  const results: T[] = [];
  const end = performance.now() + ATTACK_MS;
  while (performance.now() < end) {
    const started = performance.now();
    results.push(await round());
    const left = everyMs - (performance.now() - started);
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
  }
  return results;
}

/** A bystander doc on `transport`, loaded; its data has a number `n`. */
async function bystanderDoc(
  url: string,
  transport: Transport,
  collection: string,
  id: string,
  closers: Array<() => Promise<void>>,
): Promise<Doc> {
  const client = await openQueryClient(url, transport, closers);
  const doc = client.connection.get(collection, id);
  await fetchDoc(doc);
  if (!doc.type) await create(doc, { n: 0 });
  return doc;
}

/** Pinned seeds for the evaluation check; QUERY_SEED=<n> runs another. */
const SEEDS = process.env.QUERY_SEED ? [Number(process.env.QUERY_SEED)] : [1, 2, 3];

describe('resilience: queries', function () {
  this.timeout(60_000);

  // The stores no longer hold a whole collection to sort it: the sliced, bounded evaluation
  // (top $skip+$limit kept, early stop) must give what mingo's own find/sort/skip/limit gives.
  for (const seed of SEEDS) {
    it(`bounded evaluation equals mingo's on random data and queries (seed ${seed}; QUERY_SEED=${seed} to rerun)`, function () {
      const rng = new Rng(seed);
      const values = [0, 1, 2, 'a', 'b', null, [1, 2], { x: 1 }, true];
      for (let round = 0; round < 40; round++) {
        const snapshots: QuerySnapshot[] = Array.from({ length: rng.range(0, 80) }, (_, i) => ({
          id: `d${String(i).padStart(3, '0')}`,
          v: 1,
          type: 'json1',
          m: null,
          data: { a: rng.pick(values), b: rng.int(5), ...(rng.chance(0.8) ? { c: rng.pick(values) } : {}) },
        }));
        const query: Record<string, unknown> = rng.chance(0.5) ? { b: { $gte: rng.int(4) } } : {};
        if (rng.chance(0.7)) query.$sort = rng.chance(0.5) ? { a: rng.pick([1, -1]) } : { c: rng.pick([1, -1]), b: rng.pick([1, -1]) };
        if (rng.chance(0.5)) query.$skip = rng.int(10);
        if (rng.chance(0.6)) query.$limit = rng.int(12);
        const run = new QueryRun(compileQuery(query), Infinity);
        for (const snapshot of snapshots) run.add(snapshot);
        const got = run.finish().snapshots.map((s) => s.id);
        const { $sort, $skip, $limit, ...filter } = query;
        let cursor = new Query(filter).find<Record<string, unknown>>(snapshots.map(toMongoDoc));
        if ($sort) cursor = cursor.sort($sort as Record<string, 1 | -1>);
        if ($skip !== undefined) cursor = cursor.skip($skip as number);
        if ($limit !== undefined) cursor = cursor.limit($limit as number);
        const expected = cursor.all().map((d) => d._id);
        assert.deepEqual(got, expected, `seed ${seed} round ${round}: ${JSON.stringify(query)}`);
        const counted = new QueryRun(compileQuery({ ...query, $count: true }), Infinity);
        for (const snapshot of snapshots) counted.add(snapshot);
        assert.equal(counted.finish().extra, expected.length, `seed ${seed} round ${round}: $count`);
      }
    });
  }

  describe('on the wire (validation, caps, rate)', function () {
    let server: TestServer;
    const closers: Array<() => Promise<void>> = [];
    before(async function () {
      server = await startTestServer({ MAX_QUERY_SCAN: '50', MAX_QUERY_RESULTS: '10', QUERIES_PER_MINUTE: '200' });
      const app = server.backend.connect();
      const creates: Array<Promise<void>> = [];
      for (let i = 0; i < 60; i++) creates.push(create(app.get('wide', `w${i}`), { n: i, s: `text ${i}` }));
      for (let i = 0; i < 30; i++)
        creates.push(create(app.get('items', `i${i}`), { n: i, s: i === 7 ? 'a'.repeat(30) + '!' : `item ${i}`, tags: ['a', 'b'] }));
      await Promise.all(creates);
      app.close();
    });
    afterEach(async function () {
      for (const close of closers.splice(0).reverse()) await close();
    });
    after(async function () {
      await server?.close();
    });

    for (const transport of TRANSPORTS) {
      describe(transport, function () {
        it('refuses code, unknown operators, oversized filters and unsafe regexes with TANDEM_INVALID_QUERY', async function () {
          const { connection } = await openQueryClient(server.url, transport, closers);
          for (const [what, query] of REFUSED_QUERIES) {
            assert.equal(await codeOf(fetchQuery(connection, 'items', query)), INVALID, `fetch: ${what}`);
            assert.equal(await codeOf(subscribeQuery(connection, 'items', query)), INVALID, `subscribe: ${what}`);
          }
          // Safe regexes run (on RE2: linear whatever the input), with their flags.
          assert.deepEqual((await fetchQuery(connection, 'items', { s: { $regex: '^ITEM 1\\d$', $options: 'i' } })).ids.sort(), [
            'i10',
            'i11',
            'i12',
            'i13',
            'i14',
            'i15',
            'i16',
            'i17',
            'i18',
            'i19',
          ]);
          assert.deepEqual((await fetchQuery(connection, 'items', { s: { $not: { $regex: '^item' } } })).ids, ['i7']);
          // $expr compares fields.
          assert.deepEqual((await fetchQuery(connection, 'items', { $expr: { $and: [{ $gt: ['$n', 26] }, { $ne: ['$n', 28] }] } })).ids, [
            'i27',
            'i29',
          ]);
          // Exponential on a backtracking engine, but star height 1: accepted and linear here.
          assert.deepEqual((await fetchQuery(connection, 'items', { s: { $regex: '^(a|a)*$' } })).ids, []);
          assert.deepEqual((await fetchQuery(connection, 'items', { s: { $regex: '^(a|a)*!$' } })).ids, ['i7']);
        });

        it('refuses queries past MAX_QUERY_SCAN and MAX_QUERY_RESULTS with TANDEM_QUERY_TOO_LARGE', async function () {
          const { connection } = await openQueryClient(server.url, transport, closers);
          // 60 documents, MAX_QUERY_SCAN=50: no scan, whatever the filter…
          assert.equal(await codeOf(fetchQuery(connection, 'wide', { n: 3 })), TOO_LARGE);
          assert.equal(await codeOf(subscribeQuery(connection, 'wide', { $sort: { n: 1 }, $limit: 1 })), TOO_LARGE);
          // …but documents named by _id are read directly.
          assert.deepEqual((await fetchQuery(connection, 'wide', { _id: { $in: ['w3', 'w59', 'nope'] }, n: { $gt: 10 } })).ids, ['w59']);
          assert.deepEqual((await fetchQuery(connection, 'wide', { _id: 'w5' })).ids, ['w5']);
          // 30 documents, MAX_QUERY_RESULTS=10.
          assert.equal(await codeOf(fetchQuery(connection, 'items', {})), TOO_LARGE);
          assert.equal(await codeOf(subscribeQuery(connection, 'items', { n: { $gte: 5 } })), TOO_LARGE);
          assert.equal((await fetchQuery(connection, 'items', { $sort: { n: -1 }, $limit: 10 })).ids[0], 'i29');
          assert.equal((await fetchQuery(connection, 'items', { $count: true })).extra, 30);
          const subscribed = await subscribeQuery(connection, 'items', { n: { $lt: 5 } });
          assert.equal(subscribed.results.length, 5);
          subscribed.destroy();
        });
      });
    }

    it("does not cap the application's own (server-side) connection", async function () {
      const app = server.backend.connect();
      try {
        const all = await fetchQuery(app, 'wide', { n: { $gte: 0 } });
        assert.equal(all.ids.length, 60);
      } finally {
        app.close();
      }
    });
  });

  describe('QUERIES_PER_MINUTE', function () {
    let server: TestServer;
    const closers: Array<() => Promise<void>> = [];
    before(async function () {
      server = await startTestServer({ QUERIES_PER_MINUTE: '5' });
    });
    afterEach(async function () {
      for (const close of closers.splice(0).reverse()) await close();
    });
    after(async function () {
      await server?.close();
    });

    for (const transport of TRANSPORTS) {
      it(`refuses past the budget with TANDEM_RATE_LIMITED and retryAfterMs, per connection (${transport})`, async function () {
        const client: QueryClient = await openQueryClient(server.url, transport, closers);
        for (let i = 0; i < 5; i++) {
          if (i % 2) await fetchQuery(client.connection, 'items', {});
          else (await subscribeQuery(client.connection, 'items', {})).destroy();
        }
        assert.equal(await codeOf(fetchQuery(client.connection, 'items', {})), TandemErrorCode.RATE_LIMITED);
        assert.equal(await codeOf(subscribeQuery(client.connection, 'items', {})), TandemErrorCode.RATE_LIMITED);
        const limited = client.errors.filter((e) => e.code === TandemErrorCode.RATE_LIMITED);
        assert.equal(limited.length, 2);
        // 5 per minute: the next token at most 12 s away.
        for (const error of limited)
          assert.ok(error.retryAfterMs! > 1000 && error.retryAfterMs! <= 12_000, `retryAfterMs ${error.retryAfterMs}`);
        // Another connection has its own budget.
        const other = await openQueryClient(server.url, transport, closers);
        assert.deepEqual((await fetchQuery(other.connection, 'items', {})).ids, []);
      });
    }
  });

  describe('attacks against a server process with 20,000 documents', function () {
    const closers: Array<() => Promise<void>> = [];
    let dir: string;
    /** Default limits (MAX_QUERY_SCAN 10,000: the big collection cannot be scanned). */
    let capped: ServerProcess;
    /** MAX_QUERY_SCAN 20,000: every subscription of the attack is accepted and re-run. */
    let open: ServerProcess;

    before(async function () {
      dir = mkdtempSync(join(tmpdir(), 'tandem-query-attack-'));
      const files = [join(dir, 'capped.db'), join(dir, 'open.db')];
      for (const file of files) {
        populate(file, 'big', BIG, (i) => ({ n: i, s: `document number ${i}`, tags: ['a', `t${i % 100}`] }));
        populate(file, 'medium', 2000, (i) => ({ n: i }), 'm');
        populate(file, 'planted', 3, (i) => ({ s: ['a'.repeat(30) + '!', 'a'.repeat(30), 'hello'][i] }), 'p');
      }
      [capped, open] = await Promise.all([
        startServerProcess({ DB_URL: `sqlite:${files[0]}` }),
        startServerProcess({ DB_URL: `sqlite:${files[1]}`, MAX_QUERY_SCAN: String(BIG) }),
      ]);
    });
    afterEach(async function () {
      for (const close of closers.splice(0).reverse()) await close();
    });
    after(async function () {
      await Promise.all([capped?.stop(), open?.stop()]);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** Runs `attack` while watching health and a bystander on the other transport; asserts both. */
    async function underWatch<T>(
      server: ServerProcess,
      transport: Transport,
      what: string,
      attack: () => Promise<T>,
    ): Promise<{ result: T; health: HealthReport; others: BystanderReport }> {
      const doc = await bystanderDoc(
        server.url,
        transport === 'sharedb' ? 'socket.io' : 'sharedb',
        'notes',
        `bystander-${transport}`,
        closers,
      );
      const health = watchHealth(server.url, server.child.pid!);
      const others = bystander(doc);
      const outcome = await attack().then(
        (result) => ({ result }),
        (error: unknown) => ({ error }),
      );
      // After it: still answering queries.
      const after = await fetchQuery(doc.connection, 'notes', { _id: doc.id }).catch((err: Error) => err);
      const reports = { health: await health.stop(), others: await others.stop() };
      if ('error' in outcome) throw outcome.error;
      const result = outcome.result;
      assert.ok(!(after instanceof Error) && after.ids.length === 1, `${what}: a query after the attack (${String(after)})`);
      assertHealthy(reports.health, reports.others, what);
      assert.ok(server.child.exitCode === null, `${what}: the server process is up`);
      return { result, ...reports };
    }

    for (const [index, transport] of TRANSPORTS.entries()) {
      describe(transport, function () {
        it('the catastrophic regex is refused, and regexes that pass run in linear time', async function () {
          const { connection } = await openQueryClient(capped.url, transport, closers);
          const { result: rounds } = await underWatch(capped, transport, 'catastrophic regex', () =>
            repeatFor(async () => {
              const codes = await Promise.all(
                Array.from({ length: 6 }, (_, i) =>
                  codeOf(
                    i % 2
                      ? fetchQuery(connection, 'planted', { s: { $regex: '^(a+)+$' } })
                      : subscribeQuery(connection, 'planted', { s: { $regex: '^(a+)+$' } }),
                  ),
                ),
              );
              const started = performance.now();
              const linear = await fetchQuery(connection, 'planted', { s: { $regex: '^(a|aa)*$' } });
              return { codes, linear, linearMs: performance.now() - started };
            }),
          );
          assert.deepEqual(new Set(rounds.flatMap((r) => r.codes)), new Set([INVALID]));
          for (const round of rounds) {
            assert.deepEqual(round.linear.ids, ['p000001']);
            assert.ok(round.linearMs < 1000, `a regex exponential on a backtracking engine answered in ${Math.round(round.linearMs)} ms`);
          }
        });

        it('refused queries on the 20,000-document collection read nothing and do not block', async function () {
          const { connection } = await openQueryClient(capped.url, transport, closers);
          const latencies: number[] = [];
          const { result: rounds } = await underWatch(capped, transport, 'refused queries', () =>
            repeatFor(() =>
              Promise.all(
                Array.from({ length: 6 }, async (_, i) => {
                  const started = performance.now();
                  const query = [{ $where: 'true' }, { n: { $expr: 1 } }, { n: 5 }][i % 3];
                  const code = await codeOf(fetchQuery(connection, 'big', query));
                  latencies.push(performance.now() - started);
                  return code;
                }),
              ),
            ),
          );
          const codes = rounds.flat();
          assert.deepEqual(
            codes.filter((c) => c !== INVALID && c !== TOO_LARGE),
            [],
          );
          assert.equal(codes.filter((c) => c === TOO_LARGE).length, codes.length / 3);
          // Refused before any document is read (a scan of 20,000 took 150–500 ms). Speed is a
          // benchmark's business on this machine; the test holds the bound (1 s, as for
          // /healthz above) and prints the median for the record.
          latencies.sort((a, b) => a - b);
          const median = latencies[latencies.length >> 1]!;
          console.log(`      ${transport}: ${codes.length} refusals, median ${median.toFixed(1)} ms`);
          assert.ok(median < 1000, `${codes.length} refusals, median ${median.toFixed(1)} ms`);
        });

        it('the scan and result caps answer with TANDEM_QUERY_TOO_LARGE; _id queries still work', async function () {
          const { connection } = await openQueryClient(capped.url, transport, closers);
          const { result: rounds } = await underWatch(capped, transport, 'caps', () =>
            repeatFor(
              async () => ({
                scan: await codeOf(fetchQuery(connection, 'big', { $sort: { n: -1 }, $limit: 1 })),
                scanSubscribe: await codeOf(subscribeQuery(connection, 'big', { tags: 't7' })),
                byId: await fetchQuery(connection, 'big', { _id: { $in: ['d000007', 'd019999'] } }),
                results: await codeOf(fetchQuery(connection, 'medium', { n: { $gte: 0 } })),
                limited: await fetchQuery(connection, 'medium', { $sort: { n: -1 }, $limit: 3 }),
                count: await fetchQuery(connection, 'medium', { $count: true }),
              }),
              250,
            ),
          );
          for (const result of rounds) {
            assert.equal(result.scan, TOO_LARGE);
            assert.equal(result.scanSubscribe, TOO_LARGE);
            assert.deepEqual(result.byId.ids, ['d000007', 'd019999']);
            assert.equal(result.results, TOO_LARGE);
            assert.deepEqual(result.limited.ids, ['m001999', 'm001998', 'm001997']);
            assert.equal(result.count.extra, 2000);
          }
        });

        it('10 query subscriptions on the 20,000 documents do not slow down the commits of others', async function () {
          const attacker = await openQueryClient(open.url, transport, closers);
          const rssBefore = rssOf(open.child.pid!);
          // Ten different subscriptions (nothing to share), each re-run after ops on the collection.
          const queries = Array.from({ length: 10 }, (_, k) => ({ $sort: { n: -1 }, $limit: k + 1 }));
          const subscriptions = await Promise.all(queries.map((q) => subscribeQuery(attacker.connection, 'big', q)));
          const top = subscriptions[0]!.results[0]!.id;
          for (const s of subscriptions) assert.equal(s.results[0]!.id, top);
          // The bystander edits a document of the same collection: every op concerns every subscription.
          const writerId = `d00000${index}`;
          const writer = await bystanderDoc(open.url, transport, 'big', writerId, closers);
          const health = watchHealth(open.url, open.child.pid!);
          const others = bystander(writer, 10);
          // At ~100 ops a second for long enough that polls would pile up without the bounds.
          await waitFor(() => writer.version! >= 150, { timeoutMs: 30_000, what: 'the bystander at 150 ops' });
          const report = { health: await health.stop(), others: await others.stop() };
          assertHealthy(report.health, report.others, '10 subscriptions');
          assert.ok(report.others.maxAckMs < 1000, `slowest ack ${Math.round(report.others.maxAckMs)} ms (2.6 s each before)`);
          assert.ok(report.health.maxRssBytes - rssBefore < 200 * 1024 * 1024, `RSS grew ${MB(report.health.maxRssBytes - rssBefore)}`);
          // The subscriptions still follow the collection: d000000 becomes the largest n.
          await submit(writer, ['n', { ena: 10 ** (7 + index) }]);
          await waitFor(() => subscriptions.every((s) => s.results[0]?.id === writerId), {
            timeoutMs: 30_000,
            what: 'every subscription re-run',
          });
          assert.deepEqual(attacker.errors, []);
          for (const s of subscriptions) s.destroy();
        });
      });
    }
  });
});
