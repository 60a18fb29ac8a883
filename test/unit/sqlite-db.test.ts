/**
 * SqliteDB beyond ShareDB's conformance suite: stale and duplicate commits, several
 * connections (and a real second process) on one file, reopen, resent-op lookup,
 * milestones used by historic fetches, the query language, and openStorage.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'libsql';
import ShareDB from 'sharedb';
import { openStorage } from '../../server/storage/index.js';
import { createSqliteMilestoneDb } from '../../server/storage/sqlite-milestone.js';
import { createSqliteDb, type SqliteDB, type StoredOp } from '../../server/storage/sqlite.js';
import type { QuerySnapshot } from '../../server/storage/mingo-query.js';
import { Turn } from '../../server/turn.js';
import { call } from '../helpers/callback.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const JSON0 = 'http://sharejs.org/types/JSONv0';

/** Node-style callback API → promise. */
describe('SqliteDB', function () {
  let dir: string;
  let file: string;
  const toClose: Array<{ close(cb?: () => void): void }> = [];
  function open(): SqliteDB {
    const db = createSqliteDb({ path: file });
    toClose.push(db);
    return db;
  }
  const snapshotOf = (db: SqliteDB, id: string, collection = 'docs') =>
    call<QuerySnapshot>((cb) => db.getSnapshot(collection, id, null, { metadata: true }, cb));
  const opsOf = (db: SqliteDB, id: string) => call<StoredOp[]>((cb) => db.getOps('docs', id, 0, null, { metadata: true }, cb));
  const commit = (db: SqliteDB, id: string, op: StoredOp, snapshot: Omit<QuerySnapshot, 'id'>) =>
    call<boolean>((cb) => db.commit('docs', id, op, { id, ...snapshot }, null, cb));
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
  /** A JSON0 counter document at `{n}` and the op that adds one to it, for commits by hand. */
  const counter = (n: number) => ({ v: n + 1, type: JSON0, data: { n }, m: null });
  const increment = (v: number, src: string) => ({ v, op: [{ p: ['n'], na: 1 }], src, seq: v });

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-sqlite-unit-'));
    file = path.join(dir, 'data', 'tandem.db');
  });
  afterEach(function () {
    for (const db of toClose.splice(0)) db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Counts the calls of one method of the store's documents (sqlite-documents.ts). */
  function countCalls(db: SqliteDB, method: 'head' | 'opRowsIfWhole' | 'dataVersion'): { count: number } {
    const documents = (db as unknown as { documents: Record<string, (...args: unknown[]) => unknown> }).documents;
    const original = documents[method]!.bind(documents);
    const calls = { count: 0 };
    documents[method] = (...args: unknown[]) => {
      calls.count++;
      return original(...args);
    };
    return calls;
  }

  async function submitChain(doc: ShareDB.Doc, count: number, { yieldBetween = false } = {}): Promise<void> {
    for (let i = 0; i < count; i++) {
      await call<void>((cb) => doc.submitOp([{ p: ['n'], na: 1 }], {}, cb));
      if (yieldBetween) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async function assertContiguousCounter(db: SqliteDB, id: string, increments: number) {
    const snapshot = await snapshotOf(db, id);
    const ops = await opsOf(db, id);
    assert.equal(snapshot.v, increments + 1);
    assert.deepEqual(snapshot.data, { n: increments });
    assert.deepEqual(
      ops.map((op) => op.v),
      Array.from({ length: increments + 1 }, (_, i) => i),
    );
    const srcSeq = new Set(ops.map((op) => `${op.src}:${op.seq}`));
    assert.equal(srcSeq.size, ops.length, 'an op was committed twice');
  }

  it('refuses a stale commit with succeeded=false and writes nothing', async function () {
    const db = open();
    const create = { v: 0, create: { type: JSON0, data: { n: 1 } } };
    assert.equal(await commit(db, 'a', create, { v: 1, type: JSON0, data: { n: 1 }, m: null }), true);
    // Same base version again: someone else already committed v0.
    const again = { v: 0, create: { type: JSON0, data: { n: 2 } } };
    assert.equal(await commit(db, 'a', again, { v: 1, type: JSON0, data: { n: 2 }, m: null }), false);
    // A version from the future is refused the same way.
    assert.equal(await commit(db, 'a', { v: 5, op: [] }, { v: 6, type: JSON0, data: {}, m: null }), false);
    assert.deepEqual((await snapshotOf(db, 'a')).data, { n: 1 });
    assert.equal((await opsOf(db, 'a')).length, 1);
  });

  it('takes an op row written by another writer as the version it is: a commit at that version is not succeeded, not an error', async function () {
    const db = open();
    await commit(db, 'a', { v: 0, create: { type: JSON0, data: {} } }, { v: 1, type: JSON0, data: {}, m: null });
    // An op row at v1 written by another connection, without a snapshot row: the op log is
    // the document's history (its insert moves the head), the snapshot row only a cache of it.
    const raw = new Database(file);
    raw.prepare("INSERT INTO ops (collection, id, v, op) VALUES ('docs', 'a', 1, '{}')").run();
    raw.close();
    const ok = await commit(db, 'a', { v: 1, op: [] }, { v: 2, type: JSON0, data: { x: 1 }, m: null });
    assert.equal(ok, false);
    const after = await snapshotOf(db, 'a');
    assert.equal(after.v, 2);
    assert.deepEqual(after.data, {});
  });

  it("serves a cached document without reading its version, yet sees another connection's commit in the next turn, and a stale one at once after a failed commit", async function () {
    const db = open();
    const other = open();
    // Counts the reads of a document's version in `heads`.
    const headReads = countCalls(db, 'head');
    await commit(db, 'a', { v: 0, create: { type: JSON0, data: { n: 0 } } }, counter(0));
    assert.equal((await snapshotOf(db, 'a')).v, 1);
    // This connection's own commits, each in a turn of its own, leave data_version alone.
    for (let v = 1; v <= 3; v++) {
      await nextTurn();
      assert.equal(await commit(db, 'a', increment(v, 'mine'), counter(v)), true);
      await nextTurn();
      assert.equal((await snapshotOf(db, 'a')).v, v + 1);
    }
    assert.equal(headReads.count, 0, 'a cached document this connection wrote is served without reading heads');
    // The other connection commits between two turns of this one: PRAGMA data_version moves.
    await nextTurn();
    assert.equal(await commit(other, 'a', increment(4, 'other'), counter(4)), true);
    await nextTurn();
    const seen = await snapshotOf(db, 'a');
    assert.deepEqual([seen.v, seen.data], [5, { n: 4 }]);
    assert.equal(headReads.count, 1);
    // Within one turn the check is not repeated, so a commit there can go unseen until a
    // commit built on the older version fails: then the next read takes the head at once.
    assert.equal((await snapshotOf(db, 'a')).v, 5);
    assert.equal(await commit(other, 'a', increment(5, 'other'), counter(5)), true);
    assert.equal(await commit(db, 'a', increment(5, 'mine'), counter(5)), false);
    const after = await snapshotOf(db, 'a');
    assert.equal(after.v, 6);
    assert.deepEqual(after.data, { n: 5 });
    assert.deepEqual(
      (await opsOf(db, 'a')).map((op) => op.src ?? 'create'),
      ['create', 'mine', 'mine', 'mine', 'other', 'other'],
    );
  });

  it('serves a submit its cached snapshot without PRAGMA data_version once submits are announced (expectVersion), and reads the head for an op ahead of the entry', async function () {
    const db = open();
    const other = open();
    // What ShareDB's SubmitRequest reads before it commits.
    const submitRead = () => call<QuerySnapshot>((cb) => db.getSnapshot('docs', 'a', { $submit: true }, {}, cb));
    await commit(db, 'a', { v: 0, create: { type: JSON0, data: { n: 0 } } }, counter(0));
    const versionChecks = countCalls(db, 'dataVersion');
    // Never announced (a plain ShareDB backend): a submit's read checks, as every first read of a turn.
    await nextTurn();
    assert.equal((await submitRead()).v, 1);
    assert.equal(versionChecks.count, 1);
    await nextTurn();
    db.expectVersion('docs', 'a', 1);
    assert.equal((await submitRead()).v, 1);
    assert.equal(versionChecks.count, 1, 'an announced submit read the cache without a check');
    // Another connection commits behind this one's back: the entry is served as it is, the
    // commit built on it fails its version check, and the retry's read takes the head.
    await nextTurn();
    assert.equal(await commit(other, 'a', increment(1, 'other'), counter(1)), true);
    await nextTurn();
    db.expectVersion('docs', 'a', 1);
    assert.equal((await submitRead()).v, 1);
    assert.equal(await commit(db, 'a', increment(1, 'mine'), counter(1)), false);
    assert.deepEqual((await submitRead()).data, { n: 1 });
    // An op built on a version the entry has not seen (its client learnt of it elsewhere):
    // the read takes the head, so ShareDB does not refuse the op as ahead of the snapshot.
    await nextTurn();
    assert.equal(await commit(other, 'a', increment(2, 'other'), counter(2)), true);
    await nextTurn();
    db.expectVersion('docs', 'a', 3);
    const ahead = await submitRead();
    assert.deepEqual([ahead.v, ahead.data], [3, { n: 2 }]);
    assert.equal(await commit(db, 'a', increment(3, 'mine'), counter(3)), true);
    assert.equal(versionChecks.count, 1, 'no announced submit read checked data_version');
    // Reads other than a submit's still check once per turn.
    await nextTurn();
    assert.equal((await snapshotOf(db, 'a')).v, 4);
    assert.equal(versionChecks.count, 2);
  });

  it('loses and duplicates nothing when two connections commit to one doc concurrently', async function () {
    const dbs = [open(), open()];
    const backends = dbs.map((db) => new ShareDB({ db }));
    let retries = 0;
    for (const b of backends)
      b.on('timing', (type) => {
        if (type === 'submit.retry') retries++;
      });
    const first = backends[0].connect().get('docs', 'hot');
    await call<void>((cb) => first.create({ n: 0 }, cb));

    const PER_CLIENT = 20;
    const docs = backends.flatMap((b) => [0, 1, 2].map(() => b.connect().get('docs', 'hot')));
    await Promise.all(docs.map((d) => call<void>((cb) => d.fetch(cb))));
    await Promise.all(docs.map((d) => submitChain(d, PER_CLIENT)));

    assert.ok(retries > 0, 'the test should have produced racing commits');
    await assertContiguousCounter(open(), 'hot', docs.length * PER_CLIENT);
    await Promise.all(backends.map((b) => call<void>((cb) => b.close(cb))));
  });

  for (const groupCommit of [false, true]) {
    it(`loses and duplicates nothing with a second OS process writing the same doc${groupCommit ? ' (both with group commit)' : ''}`, async function () {
      this.timeout(60_000);
      const db = createSqliteDb({ path: file, turn: groupCommit ? new Turn() : undefined });
      toClose.push(db);
      const backend = new ShareDB({ db });
      const doc = backend.connect().get('docs', 'shared');
      await call<void>((cb) => doc.create({ n: 0 }, cb));

      const PER_CHAIN = 250;
      // The child waits for "go" so both processes really write at the same time.
      const childCode = `
      import ShareDB from 'sharedb';
      import readline from 'node:readline';
      import { createSqliteDb } from './server/storage/sqlite.ts';
      import { Turn } from './server/turn.ts';
      const turn = ${groupCommit} ? new Turn() : undefined;
      const backend = new ShareDB({ db: createSqliteDb({ path: process.env.DB_FILE, turn }) });
      const docs = [backend.connect().get('docs', 'shared'), backend.connect().get('docs', 'shared')];
      await Promise.all(docs.map((d) => new Promise((res, rej) => d.fetch((e) => (e ? rej(e) : res())))));
      console.log('ready');
      await new Promise((res) => readline.createInterface({ input: process.stdin }).once('line', res));
      const submit = (d) => new Promise((res, rej) => d.submitOp([{ p: ['n'], na: 1 }], {}, (e) => (e ? rej(e) : res())));
      // Each op in its own event-loop turn, as ops from network clients arrive: in-process
      // submits chained on callbacks alone would all fall into one turn (one transaction).
      const nextTurn = () => new Promise((res) => setImmediate(res));
      await Promise.all(docs.map(async (d) => { for (let i = 0; i < ${PER_CHAIN}; i++) { await submit(d); await nextTurn(); } }));
      backend.close(() => process.exit(0));
    `;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', childCode], {
        cwd: REPO_ROOT,
        env: { ...process.env, DB_FILE: file },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('ready')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
      });
      child.stdin.write('go\n');
      const mine = [doc, backend.connect().get('docs', 'shared')];
      await call<void>((cb) => mine[1].fetch(cb));
      await Promise.all(mine.map((d) => submitChain(d, PER_CHAIN, { yieldBetween: true })));
      assert.equal(await exited, 0);

      await assertContiguousCounter(db, 'shared', 4 * PER_CHAIN);
      // Without group commit the op log must interleave the two processes, or this test proved
      // nothing. With it, each process holds the write lock for a whole turn and takes it again
      // in its next turn, while SQLite's busy handler polls with sleeps: one process can keep
      // the lock until it pauses, so interleaving is not guaranteed (README: set
      // SQLITE_GROUP_COMMIT=false for heavy writes from several processes). What must hold in
      // both modes is above: every op of both processes, contiguous, none twice.
      const ours = new Set(mine.map((d) => d.connection.id));
      const fromUs = (await opsOf(db, 'shared')).slice(1).map((op) => ours.has(op.src as string));
      const switches = fromUs.filter((v, i) => i > 0 && v !== fromUs[i - 1]).length;
      assert.ok(switches >= (groupCommit ? 1 : 2), `the processes did not write concurrently (${switches} switches)`);
      await call<void>((cb) => backend.close(cb));
    });
  }

  it('reads the ops a submit is transformed past from the cached tail, the same as the stored rows, and the store where the tail stops', async function () {
    const db = open();
    const other = open();
    // Counts the op-log reads that reach SQLite (the tail answers without one).
    const storeReads = countCalls(db, 'opRowsIfWhole');
    const rangeOf = (from: number, to: number) => call<StoredOp[]>((cb) => db.getOps('docs', 't', from, to, { metadata: true }, cb));
    const stored = (from: number, to: number): StoredOp[] => {
      const raw = new Database(file, { readonly: true });
      const rows = raw
        .prepare("SELECT v, op FROM ops WHERE collection = 'docs' AND id = 't' AND v >= ? AND v < ? ORDER BY v")
        .all(from, to);
      raw.close();
      return (rows as Array<{ v: number; op: string }>).map((r) => ({ ...(JSON.parse(r.op) as StoredOp), v: r.v }));
    };
    await commit(
      db,
      't',
      { v: 0, create: { type: JSON0, data: { n: 0 } }, src: 'a', seq: 0 },
      { v: 1, type: JSON0, data: { n: 0 }, m: null },
    );
    for (let v = 1; v <= 100; v++) {
      const op = { v, op: [{ p: ['n'], na: 1 }], src: 'a', seq: v, m: { ts: v } };
      assert.equal(await commit(db, 't', op, { v: v + 1, type: JSON0, data: { n: v }, m: null }), true);
    }
    storeReads.count = 0;
    assert.deepEqual(await rangeOf(90, 101), stored(90, 101));
    assert.deepEqual(await rangeOf(100, 101), stored(100, 101));
    assert.equal(storeReads.count, 0, 'the latest ops come from the tail');
    assert.deepEqual(await rangeOf(0, 101), stored(0, 101));
    assert.equal(storeReads.count, 1, 'older ops than the tail holds come from the store');

    // Another connection commits: the tail stops at what this one knows and the rest is read;
    // once this connection caught up (a snapshot read), the tail covers those ops too.
    await snapshotOf(other, 't');
    for (let v = 101; v <= 105; v++) {
      await commit(other, 't', { v, op: [{ p: ['n'], na: 1 }], src: 'b', seq: v }, { v: v + 1, type: JSON0, data: { n: v }, m: null });
    }
    storeReads.count = 0;
    assert.deepEqual(await rangeOf(95, 106), stored(95, 106));
    assert.equal(storeReads.count, 1);
    assert.equal((await snapshotOf(db, 't')).v, 106);
    storeReads.count = 0;
    assert.deepEqual(await rangeOf(95, 106), stored(95, 106));
    assert.equal(storeReads.count, 0, 'ops replayed from the log extend the tail');
    // (Compaction drops the tails: test/integration/oplog-retention.test.ts.)
  });

  it('keeps snapshots, ops and milestones across close and reopen', async function () {
    const milestoneDb = createSqliteMilestoneDb({ path: file, interval: 2 });
    const backend = new ShareDB({ db: createSqliteDb({ path: file }), milestoneDb });
    const doc = backend.connect().get('docs', 'kept');
    await call<void>((cb) => doc.create({ n: 0 }, cb));
    await submitChain(doc, 3);
    await call<void>((cb) => backend.close(cb));

    const reopened = open();
    await assertContiguousCounter(reopened, 'kept', 3);
    const milestones = createSqliteMilestoneDb({ path: file, interval: 2 });
    toClose.push(milestones);
    const m = await call<QuerySnapshot>((cb) => milestones.getMilestoneSnapshot('docs', 'kept', null, cb));
    assert.equal(m.v, 4);
    assert.deepEqual(m.data, { n: 3 });
  });

  it('finds a committed op by src/seq (getCommittedOpVersion), bounded by the snapshot', async function () {
    const db = open();
    const backend = new ShareDB({ db });
    const doc = backend.connect().get('docs', 'dedupe');
    await call<void>((cb) => doc.create({ n: 0 }, cb));
    await submitChain(doc, 2);
    const ops = await opsOf(db, 'dedupe');
    const target = ops[2];
    assert.ok(target.src && typeof target.seq === 'number');
    const lookup = (snapshotV: number, op: StoredOp) =>
      call<number | undefined>((cb) => db.getCommittedOpVersion('docs', 'dedupe', { v: snapshotV }, op, null, cb));
    assert.equal(await lookup(3, { v: 0, src: target.src, seq: target.seq }), 2);
    assert.equal(await lookup(2, { v: 0, src: target.src, seq: target.seq }), undefined);
    assert.equal(await lookup(3, { v: 0, src: target.src, seq: 999 }), undefined);
    assert.equal(await lookup(3, { v: 0 }), undefined);
    await call<void>((cb) => backend.close(cb));
  });

  it('serves an old version from the nearest milestone, replaying only the ops after it', async function () {
    const db = open();
    const milestoneDb = createSqliteMilestoneDb({ path: file, interval: 5 });
    toClose.push(milestoneDb);
    const backend = new ShareDB({ db, milestoneDb });
    const connection = backend.connect();
    const doc = connection.get('docs', 'history');
    await call<void>((cb) => doc.create({ n: 0 }, cb));
    await submitChain(doc, 11); // now v12; milestones at v5 and v10

    const getOpsCalls: Array<[number | null, number | null]> = [];
    const original = db.getOps.bind(db);
    db.getOps = (collection, id, from, to, options, callback) => {
      getOpsCalls.push([from, to]);
      original(collection, id, from, to, options, callback);
    };
    const at7 = await call<ShareDB.Snapshot>((cb) => connection.fetchSnapshot('docs', 'history', 7, cb));
    assert.equal(at7.v, 7);
    assert.deepEqual(at7.data, { n: 6 });
    assert.deepEqual(getOpsCalls, [[5, 7]]);
    await call<void>((cb) => backend.close(cb));
  });

  describe('queries (mingo-query over SQLite)', function () {
    let db: SqliteDB;
    beforeEach(async function () {
      db = open();
      const rows = [
        { id: 'a', data: { age: 3, color: 'gold', tags: ['x'] }, mtime: 10 },
        { id: 'b', data: { age: 5, color: 'gold', tags: ['y'] }, mtime: 20 },
        { id: 'c', data: { age: 7, color: 'black', tags: ['x', 'z'] }, mtime: 30 },
        { id: 'gone', data: { age: 4, color: 'gold', tags: [] }, mtime: 40 },
      ];
      for (const r of rows) {
        await commit(
          db,
          r.id,
          { v: 0, create: { type: JSON0, data: r.data } },
          { v: 1, type: JSON0, data: r.data, m: { ctime: r.mtime, mtime: r.mtime } },
        );
      }
      await commit(db, 'gone', { v: 1, del: true }, { v: 2, type: null, data: undefined, m: { mtime: 50 } });
    });
    const query = (q: unknown, options: { metadata?: boolean } | null = null) =>
      new Promise<{ ids: string[]; extra: unknown; snapshots: ShareDB.Snapshot[] }>((resolve, reject) =>
        db.query('docs', q, {}, options, (err, snapshots, extra) =>
          err ? reject(err) : resolve({ ids: snapshots.map((s) => s.id), extra, snapshots }),
        ),
      );

    it('filters, sorts, skips and limits, never returning deleted docs', async function () {
      assert.deepEqual((await query({ color: 'gold' })).ids.sort(), ['a', 'b']);
      assert.deepEqual((await query({ $sort: { age: -1 }, $skip: 1, $limit: 1 })).ids, ['b']);
      assert.deepEqual((await query({ _id: { $in: ['c', 'gone'] } })).ids, ['c']);
      assert.deepEqual((await query({ '_m.mtime': { $gte: 20 }, $sort: { age: 1 } })).ids, ['b', 'c']);
    });

    it('returns $count and $distinct in extra', async function () {
      assert.deepEqual(await query({ color: 'gold', $count: true }).then((r) => [r.ids, r.extra]), [[], 2]);
      const distinct = await query({ $distinct: { field: 'tags' } });
      assert.deepEqual((distinct.extra as string[]).sort(), ['x', 'y', 'z']);
    });

    it('strips metadata unless asked, and refuses script/aggregate queries with a code', async function () {
      assert.equal((await query({ _id: 'a' })).snapshots[0].m, null);
      assert.deepEqual((await query({ _id: 'a' }, { metadata: true })).snapshots[0].m, { ctime: 10, mtime: 10 });
      for (const bad of [{ $aggregate: [] }, { $where: 'true' }, { $sort: { age: 2 } }]) {
        await assert.rejects(query(bad), { code: 'TANDEM_INVALID_QUERY' });
      }
    });

    it('polls single docs only when sort/skip/limit/count cannot be affected', async function () {
      assert.equal(db.canPollDoc('docs', { color: 'gold' }), true);
      assert.equal(db.canPollDoc('docs', { $sort: { age: 1 } }), false);
      assert.equal(db.canPollDoc('docs', { $count: true }), false);
      const poll = (id: string, q: unknown) => call<boolean>((cb) => db.queryPollDoc('docs', id, q, null, cb));
      assert.equal(await poll('a', { color: 'gold' }), true);
      assert.equal(await poll('c', { color: 'gold' }), false);
      assert.equal(await poll('gone', {}), false);
    });
  });

  describe('openStorage', function () {
    it('opens sqlite:<path> (creating its directory), pings, and closes idempotently', async function () {
      const storage = openStorage(`sqlite:${file}`, { milestoneInterval: 10 });
      assert.equal(storage.kind, 'sqlite');
      assert.ok(fs.existsSync(file));
      await storage.ping();
      await storage.close();
      await storage.close();
      await assert.rejects(storage.ping(), { code: 'TANDEM_DB_CLOSED' });
    });

    it('opens memory:', async function () {
      const storage = openStorage('memory:');
      assert.equal(storage.kind, 'memory');
      await storage.ping();
      await storage.close();
      await assert.rejects(storage.ping());
    });

    it('names the accepted forms for an unknown scheme, without echoing the URL', function () {
      assert.throws(
        () => openStorage('mysql://user:secret@host/db'),
        (err: Error) => {
          assert.match(err.message, /sqlite:<path>.*memory:.*mongodb:\/\/.*mongodb\+srv:\/\/.*postgres:\/\//);
          assert.doesNotMatch(err.message, /secret/);
          return true;
        },
      );
      assert.throws(() => openStorage('sqlite:'), /no file path/);
    });

    it('builds mongo storage whose ping fails (not hangs, not crashes) without a server', async function () {
      const storage = openStorage('mongodb://127.0.0.1:1/tandem?serverSelectionTimeoutMS=200');
      assert.equal(storage.kind, 'mongo');
      await assert.rejects(storage.ping());
      await assert.rejects(storage.ping()); // re-connects rather than staying "topology closed"
      await storage.close();
    });
  });
});
