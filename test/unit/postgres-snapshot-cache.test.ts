/**
 * PostgresDB's snapshot cache (postgres-snapshots.ts): a read, of one document or of many at
 * once, answered from memory when PostgreSQL confirms the cached version, and never a stale
 * one, with two instances committing to the same documents in turn. Every read is compared
 * with one by an instance without a cache (SNAPSHOT_CACHE_MB=0) on the same schema.
 *
 * Needs PostgreSQL (PG_TEST_URL): fails under CI=true without it, skipped loudly otherwise.
 */
import assert from 'node:assert/strict';
import { JSON1_TYPE_URI } from '../../ot-types/json1-type.js';
import type { QuerySnapshot } from '../../server/storage/mingo-query.js';
import { PostgresStore } from '../../server/storage/postgres-connection.js';
import { PostgresDB } from '../../server/storage/postgres.js';
import type { StoredOp } from '../../server/storage/store-db.js';
import { Rng } from '../fuzz/rng.js';
import { call } from '../helpers/callback.js';
import { PG_TEST_URL, postgresUnavailable, TestSchemas } from '../helpers/postgres.js';
import { requireService } from '../helpers/skip.js';

const COLLECTION = 'docs';

/** What ShareDB asks for before a commit: the snapshot with its metadata. */
function read(db: PostgresDB, id: string): Promise<QuerySnapshot> {
  return call<QuerySnapshot>((cb) => db.getSnapshot(COLLECTION, id, { $submit: true }, null, cb));
}

/** What ShareDB asks for when a client subscribes to or fetches many documents at once; `options.metadata` as a client may ask. */
function readBulk(db: PostgresDB, ids: string[], metadata = false): Promise<Record<string, QuerySnapshot>> {
  return call<Record<string, QuerySnapshot>>((cb) => db.getSnapshotBulk(COLLECTION, ids, null, { metadata }, cb));
}

/** Commits version `v` of `id` with `data` (the op's content does not matter to the store). */
function commit(db: PostgresDB, id: string, v: number, data: unknown): Promise<boolean> {
  const op: StoredOp = v === 0 ? { v, create: { type: JSON1_TYPE_URI, data } } : { v, op: ['n', { r: true, i: v }] };
  const snapshot: QuerySnapshot = { id, v: v + 1, type: JSON1_TYPE_URI, data, m: { mtime: v } };
  return call<boolean>((cb) => db.commit(COLLECTION, id, op, snapshot, null, cb));
}

describe('PostgreSQL snapshot cache', function () {
  this.timeout(60_000);
  const schemas = new TestSchemas();
  const opened: PostgresDB[] = [];

  before(async function () {
    const reason = await postgresUnavailable();
    requireService(this, reason === null, reason ?? '');
  });
  afterEach(async () => {
    for (const db of opened.splice(0)) await call<void>((cb) => db.close(cb));
  });
  after(() => schemas.dropAll());

  /** Two caching instances and one without a cache, on one fresh schema. */
  async function instances(cacheBytes?: number): Promise<{ a: PostgresDB; b: PostgresDB; truth: PostgresDB }> {
    const schema = (await schemas.store()).tables.schema!;
    const on = (bytes: number | undefined) =>
      new PostgresDB(new PostgresStore({ url: PG_TEST_URL, schema, poolMax: 2 }), { snapshotCacheBytes: bytes });
    const dbs = { a: on(cacheBytes), b: on(cacheBytes), truth: on(0) };
    opened.push(dbs.a, dbs.b, dbs.truth);
    return dbs;
  }

  it('two instances committing in turn: every read equals an uncached one, also for a deleted document', async () => {
    const { a, b, truth } = await instances();
    const rng = new Rng(7);
    const ids = ['d0', 'd1', 'd2'];
    const texts = new Map(ids.map((id) => [id, '']));
    for (let step = 0; step < 240; step++) {
      const id = rng.pick(ids);
      const writer = rng.chance(0.5) ? a : b;
      // As ShareDB commits: read the current snapshot, then commit the next version.
      const current = await read(writer, id);
      const text = `${texts.get(id)}${step % 10}`;
      texts.set(id, text);
      assert.equal(await commit(writer, id, current.v, { text, step, list: [step, { at: id }] }), true, `step ${step}`);
      for (const db of [a, b]) {
        const [cached, stored] = await Promise.all([read(db, id), read(truth, id)]);
        assert.deepEqual(cached, stored, `step ${step}: ${db === a ? 'a' : 'b'} read ${id}`);
      }
      // Many at once, with one that never existed, as a bulk subscribe asks.
      if (step % 8 === 0) {
        const metadata = step % 16 === 0;
        for (const db of [a, b]) {
          const [cached, stored] = await Promise.all([
            readBulk(db, [...ids, 'none'], metadata),
            readBulk(truth, [...ids, 'none'], metadata),
          ]);
          assert.deepEqual(cached, stored, `step ${step}: ${db === a ? 'a' : 'b'} read all`);
        }
      }
    }
    assert.ok(a.snapshotCache.documents > 0 && b.snapshotCache.documents > 0);

    // A delete keeps the version counting; both instances see it.
    const before = await read(b, 'd0');
    const deleted: QuerySnapshot = { id: 'd0', v: before.v + 1, type: null, data: undefined, m: { mtime: 1 } };
    assert.equal(await call<boolean>((cb) => a.commit(COLLECTION, 'd0', { v: before.v, del: true }, deleted, null, cb)), true);
    for (const db of [a, b]) assert.deepEqual(await read(db, 'd0'), await read(truth, 'd0'));
    assert.equal((await read(b, 'd0')).type, null);
    for (const db of [a, b]) assert.deepEqual(await readBulk(db, ids, true), await readBulk(truth, ids, true));
    assert.equal((await readBulk(a, ids))['d0']!.type, null);
  });

  it('serves the confirmed version from memory, and the stored one once another instance committed', async () => {
    const { a, b, truth } = await instances();
    const data = { title: 'cached', items: Array.from({ length: 50 }, (_, i) => ({ i })) };
    assert.equal(await commit(a, 'doc', 0, data), true);
    // json1 documents are shared, not copied: the very object committed comes back.
    assert.equal((await read(a, 'doc')).data, data, 'a read at the cached version is served from memory');
    assert.notEqual((await read(truth, 'doc')).data, data);

    const next = { ...data, title: 'by b' };
    assert.equal(await commit(b, 'doc', 1, next), true);
    const afterB = await read(a, 'doc');
    assert.equal(afterB.v, 2);
    assert.deepEqual(afterB.data, next);
    assert.notEqual(afterB.data, next, 'a read the document from PostgreSQL');

    // Many at once: each document the cache holds at PostgreSQL's version comes from memory, the rest from PostgreSQL.
    assert.equal(await commit(a, 'other', 0, { title: 'other' }), true);
    const bulk = await readBulk(a, ['doc', 'other', 'none']);
    assert.deepEqual(bulk, await readBulk(truth, ['doc', 'other', 'none']));
    assert.equal(bulk['doc']!.data, afterB.data, 'the version a read from PostgreSQL is now served from memory');
    assert.equal(bulk['other']!.v, 1);
    assert.equal(bulk['none']!.v, 0);
    assert.equal(await commit(b, 'other', 1, { title: 'other, by b' }), true);
    const bulkAfterB = await readBulk(a, ['doc', 'other']);
    assert.deepEqual(bulkAfterB['other']!.data, { title: 'other, by b' }, 'a bulk read takes a commit of another instance');
    assert.equal(bulkAfterB['doc']!.data, afterB.data);

    // a's commit at a version b already took loses, and a then reads what is stored.
    assert.equal(await commit(a, 'doc', 1, { title: 'lost' }), false);
    assert.deepEqual(await read(a, 'doc'), await read(truth, 'doc'));
  });

  it('keeps within SNAPSHOT_CACHE_MB, least recently used out first', async () => {
    const budget = 20_000;
    const { a, truth } = await instances(budget);
    const payload = 'x'.repeat(3_000);
    for (let i = 0; i < 12; i++) assert.equal(await commit(a, `doc${i}`, 0, { payload, i }), true);
    const { documents, bytes } = a.snapshotCache;
    assert.ok(documents >= 5 && documents < 12, `${documents} documents held`);
    assert.ok(bytes <= budget, `${bytes} bytes held`);
    for (let i = 0; i < 12; i++) assert.deepEqual(await read(a, `doc${i}`), await read(truth, `doc${i}`));
  });
});
