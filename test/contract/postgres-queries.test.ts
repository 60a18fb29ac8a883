/**
 * The PostgreSQL store answers queries as the in-process stores do: the same documents are
 * committed to TandemMemoryDB (mingo, the reference) and to PostgresDB, and every query
 * must give the same ids (in the same order when sorted) and the same `$count`. Then the
 * query limits: MAX_QUERY_SCAN and MAX_QUERY_RESULTS refusals, uncapped server-side queries,
 * and a statement PostgreSQL cancels.
 *
 * Needs PostgreSQL (PG_TEST_URL): fails under CI=true without it, skipped loudly otherwise.
 */
import assert from 'node:assert/strict';
import { DatabaseError } from 'pg';
import type { QueryLimits } from '../../server/limits/query-options.js';
import { markQuery } from '../../server/limits/query-options.js';
import { createMemoryDb, type TandemMemoryDB } from '../../server/storage/memory.js';
import type { QuerySnapshot } from '../../server/storage/mingo-query.js';
import type { PostgresStore } from '../../server/storage/postgres-connection.js';
import { PostgresDB } from '../../server/storage/postgres.js';
import type { StoredOp } from '../../server/storage/sqlite.js';
import { postgresUnavailable, TestSchemas } from '../helpers/postgres.js';
import { requireService } from '../helpers/skip.js';
import { call } from '../helpers/callback.js';

const JSON0 = 'http://sharejs.org/types/JSONv0';

type Db = TandemMemoryDB | PostgresDB;

function closeDb(db: { close(cb: (err?: Error) => void): void } | undefined): Promise<void> {
  return new Promise((resolve, reject) => (db ? db.close((err) => (err ? reject(err) : resolve())) : resolve()));
}

function poll(db: Db, query: unknown, options: unknown = null): Promise<{ ids: string[]; extra: unknown }> {
  return new Promise((resolve, reject) =>
    db.queryPoll('docs', query, options, (err, ids, extra) => (err ? reject(err) : resolve({ ids: ids!, extra }))),
  );
}

const DOCS: Record<string, unknown> = {
  a: { title: 'Alpha', n: 5, tags: ['x', 'y'], nested: { k: 'v', n: 1 }, flag: true },
  b: { title: 'beta', n: 10, tags: 'x', nested: { k: 'w' }, flag: false },
  c: { title: 'Gamma', n: '7', tags: [], nested: null },
  d: { title: null, n: 2.5, tags: ['z', ['x']], obj: { a: 1 } },
  e: { n: [1, 20], list: [{ a: 1 }, { a: 2 }], tags: [['x', 'y']] },
  f: { title: 'éclair', n: -3, flag: null, 'odd key': "it's" },
  g: [1, 2], // non-object data: queried as _data
  h: { title: 'Alpha', n: 5 }, // deleted below: never matches
};

const QUERIES: unknown[] = [
  {},
  { title: 'Alpha' },
  { title: null },
  { title: { $exists: false } },
  { title: { $exists: true } },
  { tags: 'z' },
  { tags: ['x', 'y'] },
  { tags: ['x'] },
  { tags: [] },
  { 'nested.k': 'v' },
  { 'nested.n': { $gte: 1 } },
  { nested: null },
  { nested: { k: 'w' } },
  { n: { $gt: 4 } },
  { n: { $gte: 5, $lt: 10 } },
  { n: { $lt: '8' } },
  { n: { $gt: 15 } },
  { n: { $in: [5, '7', 20] } },
  { n: { $in: [] } },
  { n: { $nin: [5, 10] } },
  { n: { $ne: 5 } },
  { n: { $not: { $gt: 4 } } },
  { flag: true },
  { flag: { $ne: true } },
  { flag: { $gt: false } },
  { flag: null },
  { flag: { $gte: null } },
  { flag: { $lt: null } },
  { obj: { a: 1 } },
  { 'obj.a': { $in: [1, 2] } },
  { 'list.0.a': 1 },
  { 'tags.1': 'y' },
  { title: { $gt: 'B' } },
  { title: { $lte: 'beta' } },
  { 'odd key': "it's" },
  { $or: [{ n: 5 }, { tags: 'z' }] },
  { $and: [{ n: { $gt: 0 } }, { flag: { $exists: true } }] },
  { $nor: [{ flag: true }, { n: { $lt: 0 } }] },
  { _id: 'a' },
  { _id: { $in: ['a', 'c', 'zz', 'h'] } },
  { _id: { $gt: 'c' } },
  { _id: { $ne: 'a' } },
  { _v: { $gte: 1 } },
  { _type: JSON0 },
  { '_m.mtime': { $gt: 3 } },
  { '_m.mtime': { $exists: false } },
  { _data: 1 },
  { _data: [1, 2] },
  { $sort: { n: 1 } },
  { $sort: { n: -1 } },
  { $sort: { title: 1 } },
  { $sort: { title: -1, _id: 1 } },
  { $sort: { 'nested.k': 1 } },
  { $sort: { _id: -1 } },
  { $sort: { flag: -1, n: 1 } },
  { tags: { $exists: true }, $sort: { n: 1 }, $skip: 1, $limit: 2 },
  { $limit: 3 },
  { $skip: 5 },
  { $count: true, n: { $gt: 0 } },
  { $count: true, $skip: 2, $limit: 3 },
  { $count: true, title: 'nobody' },
];

describe('PostgresDB queries — same answers as the in-process stores', function () {
  const schemas = new TestSchemas();
  let store: PostgresStore;
  let pgDb: PostgresDB;
  let memoryDb: TandemMemoryDB;

  async function commitEverywhere(id: string, op: StoredOp, snapshot: QuerySnapshot): Promise<void> {
    for (const db of [memoryDb, pgDb] as Db[]) {
      assert.equal(await call<boolean>((cb) => db.commit('docs', id, op, snapshot, null, cb)), true);
    }
  }

  before(async function () {
    const reason = await postgresUnavailable();
    requireService(this, reason === null, reason ?? '');
    store = await schemas.store();
    pgDb = new PostgresDB(store);
    memoryDb = createMemoryDb();
    let mtime = 0;
    for (const [id, data] of Object.entries(DOCS)) {
      mtime++;
      await commitEverywhere(id, { v: 0, create: { type: JSON0, data } }, { id, v: 1, type: JSON0, data, m: { ctime: mtime, mtime } });
    }
    await commitEverywhere('h', { v: 1, del: true }, { id: 'h', v: 2, type: null, data: undefined, m: null });
  });

  after(async function () {
    await closeDb(memoryDb);
    await closeDb(pgDb);
    await schemas.dropAll();
  });

  for (const query of QUERIES) {
    it(JSON.stringify(query), async function () {
      const expected = await poll(memoryDb, query);
      const actual = await poll(pgDb, query);
      const sorted = Object.hasOwn(query as object, '$sort');
      // Without $sort the order is the store's own (the memory store's insertion order here).
      const order = (ids: string[]) => (sorted ? ids : [...ids].sort());
      assert.deepEqual(order(actual.ids), order(expected.ids));
      assert.deepEqual(actual.extra, expected.extra);
    });
  }

  it('{"tags":"x"} looks one level into arrays, as MongoDB (mingo also matches [["x"]])', async function () {
    assert.deepEqual((await poll(memoryDb, { tags: 'x' })).ids.sort(), ['a', 'b', 'd', 'e']);
    assert.deepEqual((await poll(pgDb, { tags: 'x' })).ids, ['a', 'b']);
  });

  it('query returns snapshots with metadata only when asked', async function () {
    const plain = await call<QuerySnapshot[]>((cb) =>
      pgDb.query('docs', { _id: 'a' }, null, null, (err, snapshots) => cb(err as Error | null, snapshots as unknown as QuerySnapshot[])),
    );
    assert.deepEqual(plain, [{ id: 'a', v: 1, type: JSON0, data: DOCS.a, m: null }]);
    const withMeta = await call<QuerySnapshot[]>((cb) =>
      pgDb.query('docs', { _id: 'a' }, null, { metadata: true }, (err, snapshots) =>
        cb(err as Error | null, snapshots as unknown as QuerySnapshot[]),
      ),
    );
    assert.deepEqual(withMeta[0]!.m, { ctime: 1, mtime: 1 });
  });

  it('queryPollDoc answers for one document, deleted and missing ones never match', async function () {
    const pollDoc = (id: string, query: unknown) => call<boolean>((cb) => pgDb.queryPollDoc('docs', id, query, null, cb));
    assert.equal(await pollDoc('a', { tags: 'x' }), true);
    assert.equal(await pollDoc('c', { tags: 'x' }), false);
    assert.equal(await pollDoc('h', {}), false);
    assert.equal(await pollDoc('nobody', {}), false);
    assert.equal(pgDb.canPollDoc('docs', { x: 1 }), true);
    assert.equal(pgDb.canPollDoc('docs', { x: 1, $sort: { x: 1 } }), false);
  });

  describe('limits', function () {
    const limits = (maxScan: number, maxResults: number): QueryLimits => ({ maxScan, maxResults });
    afterEach(function () {
      pgDb.setQueryLimits(limits(10_000, 1000));
    });

    it('MAX_QUERY_SCAN: a collection with more live documents is not scanned, unless the query names ids', async function () {
      pgDb.setQueryLimits(limits(6, 1000)); // 7 live documents
      await assert.rejects(poll(pgDb, { n: 5 }), { code: 'TANDEM_QUERY_TOO_LARGE', message: /MAX_QUERY_SCAN/ });
      await assert.rejects(poll(pgDb, { $count: true }), { code: 'TANDEM_QUERY_TOO_LARGE' });
      assert.deepEqual((await poll(pgDb, { _id: { $in: ['a', 'b'] } })).ids, ['a', 'b']);
      pgDb.setQueryLimits(limits(7, 1000));
      assert.deepEqual((await poll(pgDb, { n: 5 })).ids, ['a']);
      assert.deepEqual((await poll(pgDb, { title: 'nobody' })).ids, []);
    });

    it('MAX_QUERY_RESULTS: more matches are refused; $limit within the cap, $count and server-side queries are not', async function () {
      pgDb.setQueryLimits(limits(10_000, 3));
      await assert.rejects(poll(pgDb, {}), { code: 'TANDEM_QUERY_TOO_LARGE', message: /MAX_QUERY_RESULTS/ });
      assert.equal((await poll(pgDb, { $limit: 3 })).ids.length, 3);
      assert.equal((await poll(pgDb, { $count: true })).extra, 7);
      assert.equal((await poll(pgDb, { n: { $gt: 4 } })).ids.length, 3);
      const serverSide = {};
      markQuery(serverSide, 'the application', true);
      assert.equal((await poll(pgDb, {}, serverSide)).ids.length, 7);
    });

    it('a statement over its time is cancelled by PostgreSQL, leaving the connection usable', async function () {
      const started = performance.now();
      await assert.rejects(store.queryWithTimeout('SELECT pg_sleep(30)', [], 200), (err: unknown) => {
        assert.ok(err instanceof DatabaseError);
        assert.equal(err.code, '57014');
        return true;
      });
      assert.ok(performance.now() - started < 5000);
      const again = await store.queryWithTimeout<{ one: number }>('SELECT 1 AS one', [], 200);
      assert.equal(again.rows[0]!.one, 1);
    });
  });
});
