/**
 * OPLOG_RETENTION (server/storage/oplog-retention.ts): ops below each document's cut (the
 * newest milestone far enough behind, and old enough) are removed; every version from the
 * cut on is still served exactly as before; older ones are refused with TANDEM_MISSING_OPS;
 * and two processes compacting one SQLite file while clients write on both lose nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as json1 from 'ot-json1';
import ShareDB from 'sharedb';
import { registerTandemTypes } from '../../ot-types/index.js';
import { TandemErrorCode } from '../../client/protocol.js';
import { ConfigError, loadConfig } from '../../server/config.js';
import { parseOplogRetention } from '../../server/storage/oplog-retention.js';
import { createSqliteDb, type SqliteDB } from '../../server/storage/sqlite.js';
import { createSqliteMilestoneDb } from '../../server/storage/sqlite-milestone.js';
import { PostgresMilestoneDB } from '../../server/storage/postgres-milestone.js';
import { PostgresDB } from '../../server/storage/postgres.js';
import { postgresUnavailable, TestSchemas } from '../helpers/postgres.js';
import { requireService } from '../helpers/skip.js';
import { create, stockClient, submit, type Doc } from '../helpers/clients.js';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { call } from '../helpers/callback.js';

type Json = Record<string, unknown>;

async function apiGet(server: { url: string }, path: string): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${server.url}/api/v1/${path}`);
  return { status: res.status, body: (await res.json()) as Json };
}

interface StoredOp {
  v: number;
  create?: { data: unknown };
  op?: unknown;
  del?: boolean;
}

/** The document after applying `ops` (consecutive, from a create) to nothing. */
function replay(ops: readonly StoredOp[], start: unknown = undefined): unknown {
  let data = start;
  for (const op of ops) {
    if (op.create) data = op.create.data;
    else if (op.op !== undefined) data = json1.type.apply(data as json1.Doc, op.op as json1.JSONOp);
  }
  return data;
}

describe('OPLOG_RETENTION: configuration', () => {
  it('takes versions=<n>, age=<n><s|m|h|d> or both; refuses anything else with TANDEM_BAD_CONFIG', () => {
    assert.equal(parseOplogRetention(undefined), null);
    assert.deepEqual(parseOplogRetention('versions=1000'), { versions: 1000, ageMs: null });
    assert.deepEqual(parseOplogRetention('age=7d'), { versions: null, ageMs: 7 * 86_400_000 });
    assert.deepEqual(parseOplogRetention('versions=50, age=90m'), { versions: 50, ageMs: 90 * 60_000 });
    for (const bad of ['versions=0', 'age=5', 'age=1w', 'forever', 'versions=1e3']) {
      assert.throws(
        () => loadConfig({ OPLOG_RETENTION: bad }),
        (err: unknown) => err instanceof ConfigError && err.code === TandemErrorCode.BAD_CONFIG && /^OPLOG_RETENTION /.test(err.message),
        bad,
      );
    }
  });

  it('a store that cannot remove ops (memory:) refuses to start with it, instead of keeping them silently', async () => {
    await assert.rejects(
      startTestServer({ DB_URL: 'memory:', OPLOG_RETENTION: 'versions=10' }),
      (err: unknown) => err instanceof ConfigError && /memory store keeps every op/.test(err.message),
    );
  });
});

describe('OPLOG_RETENTION: what is removed and what is still served', function () {
  this.timeout(60_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      MILESTONE_INTERVAL: '100',
      OPLOG_RETENTION: 'versions=250',
      // Passes are run by the test; the timer must not race it.
      OPLOG_COMPACT_INTERVAL_MS: '3600000',
      OPS_PER_MINUTE: '1000000',
    });
  });
  after(async () => {
    await server?.close();
  });

  it('removes the ops below the newest milestone 250 versions back; versions from it on are served as before; older ones get TANDEM_MISSING_OPS', async () => {
    const app = server.backend.connect();
    const doc = app.get('notes', 'kept');
    await call<void>((done) => doc.create({ n: 0, log: [] }, 'json1', done));
    for (let i = 1; i < 1000; i++) {
      const op = i % 4 === 0 ? ['log', 0, { i: `e${i}` }] : ['n', { ena: 1 }];
      await call<void>((done) => doc.submitOp(op, {}, done));
    }
    const small = app.get('notes', 'small');
    await call<void>((done) => small.create({ n: 0 }, 'json1', done));
    // The application's own connection answers within the turn (no socket): the turn's group
    // COMMIT, and the milestone saves that wait for it, happen when the turn ends.
    await new Promise((resolve) => setImmediate(resolve));
    const reader: SqliteDB = createSqliteDb({ path: join(server.dir, 'tandem.db') });
    try {
      const before = await call<StoredOp[]>((done) => reader.getOps('notes', 'kept', 0, null, null, done));
      assert.equal(before.length, 1000);
      const removed = await server.compactor!.runOnce();
      // 1000 - 250 = 750: the newest milestone at or below it is 700.
      assert.equal(removed, 700);
      assert.equal(await server.compactor!.runOnce(), 0, 'a second pass finds nothing');
      // The deletes are part of the turn's group COMMIT, visible to other connections after it.
      await new Promise((resolve) => setImmediate(resolve));
      await assert.rejects(
        call((done) => reader.getOps('notes', 'kept', 0, null, null, done)),
        { code: TandemErrorCode.MISSING_OPS },
      );
      const after = await call<StoredOp[]>((done) => reader.getOps('notes', 'kept', 700, null, null, done));
      assert.deepEqual(
        after.map((op) => op.v),
        before.slice(700).map((op) => op.v),
      );
      assert.equal(
        (await call<StoredOp[]>((done) => reader.getOps('notes', 'small', 0, null, null, done))).length,
        1,
        'young documents keep theirs',
      );
    } finally {
      reader.close();
    }
    for (const v of [700, 701, 750, 899, 1000]) {
      const at = await apiGet(server, `docs/notes/kept?v=${v}`);
      assert.equal(at.status, 200, JSON.stringify(at.body));
      assert.equal(at.body.v, v);
    }
    const latest = await apiGet(server, 'docs/notes/kept');
    assert.deepEqual(latest.body.data, doc.data);
    const tooOld = await apiGet(server, 'docs/notes/kept?v=650');
    assert.deepEqual([tooOld.status, (tooOld.body.error as Json).code], [410, TandemErrorCode.MISSING_OPS]);
    // The document goes on taking ops.
    await call<void>((done) => doc.submitOp(['n', { ena: 1 }], {}, done));
    assert.equal(doc.version, 1001);
  });

  it('age: only ops whose covering milestone is older than the age go (the clock is the caller’s)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-retention-'));
    const path = join(dir, 'age.db');
    const db = createSqliteDb({ path });
    const milestones = createSqliteMilestoneDb({ path, interval: 10 });
    try {
      registerTandemTypes();
      const backend = new ShareDB({ db, milestoneDb: milestones });
      const doc = backend.connect().get('notes', 'aged');
      await call<void>((done) => doc.create({ n: 0 }, 'json1', done));
      for (let i = 0; i < 39; i++) await call<void>((done) => doc.submitOp(['n', { ena: 1 }], {}, done));
      const hour = 3_600_000;
      assert.equal(await db.compactOps({ versions: null, ageMs: hour }, Date.now(), 1000), 0, 'nothing is an hour old');
      assert.equal(
        await db.compactOps({ versions: 15, ageMs: hour }, Date.now() + 2 * hour, 1000),
        20,
        'two hours later: below milestone 20 (40 - 15 = 25)',
      );
      assert.equal(await db.compactOps({ versions: null, ageMs: hour }, Date.now() + 2 * hour, 3), 3, 'a batch is bounded');
      assert.equal(
        await db.compactOps({ versions: null, ageMs: hour }, Date.now() + 2 * hour, 1000),
        17,
        'without a version bound: everything below the newest old-enough milestone, 40',
      );
      assert.deepEqual(await call<StoredOp[]>((done) => db.getOps('notes', 'aged', 40, null, null, done)), []);
      // The cache still held those ops in its tail: a removed op reads as missing, as from the store.
      await assert.rejects(
        call<StoredOp[]>((done) => db.getOps('notes', 'aged', 30, 40, null, done)),
        { code: 'TANDEM_MISSING_OPS' },
      );
      await call<void>((done) => doc.submitOp(['n', { ena: 1 }], {}, done));
      assert.equal(doc.version, 41);

      // A webhook target that has not received an op holds it: the cut stays at or below its cursor.
      const held = backend.connect().get('notes', 'held');
      await call<void>((done) => held.create({ n: 0 }, 'json1', done));
      db.webhookCursors.ensure('http://receiver/hook', 'notes', 'held', 15);
      for (let i = 0; i < 39; i++) await call<void>((done) => held.submitOp(['n', { ena: 1 }], {}, done));
      assert.equal(
        await db.compactOps({ versions: null, ageMs: null }, Date.now(), 1000),
        10,
        'below milestone 10, the last at or before the cursor',
      );
      assert.deepEqual(await db.webhookCursors.backlog('http://receiver/hook'), [{ collection: 'notes', id: 'held', v: 15 }]);
      await db.webhookCursors.advance('http://receiver/hook', 'notes', 'held', 40);
      assert.deepEqual(await db.webhookCursors.backlog('http://receiver/hook'), []);
      assert.equal(await db.compactOps({ versions: null, ageMs: null }, Date.now(), 1000), 30, 'delivered: up to milestone 40');
      await call<void>((done) => backend.close(done));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('OPLOG_RETENTION on PostgreSQL', function () {
  this.timeout(30_000);
  const schemas = new TestSchemas();
  before(async function () {
    const reason = await postgresUnavailable();
    requireService(this, reason === null, reason ?? '');
  });
  after(async () => {
    await schemas.dropAll();
  });

  it('removes the same ops as on SQLite: below the newest milestone far and old enough; the document goes on', async () => {
    registerTandemTypes();
    const store = await schemas.store();
    const db = new PostgresDB(store);
    const backend = new ShareDB({ db, milestoneDb: new PostgresMilestoneDB({ store, interval: 10 }) });
    const doc = backend.connect().get('notes', 'aged');
    await call<void>((done) => doc.create({ n: 0 }, 'json1', done));
    for (let i = 0; i < 39; i++) await call<void>((done) => doc.submitOp(['n', { ena: 1 }], {}, done));
    // Milestones are saved after the commit's answer: wait for the last one (v40).
    await waitFor(async () => (await store.query(`SELECT max(v) AS v FROM ${store.tables.milestones}`)).rows[0]?.v === 40, {
      what: 'milestone 40',
    });
    const hour = 3_600_000;
    assert.equal(await db.compactOps({ versions: null, ageMs: hour }, Date.now(), 1000), 0, 'nothing is an hour old');
    assert.equal(await db.compactOps({ versions: 15, ageMs: hour }, Date.now() + 2 * hour, 1000), 20, 'below milestone 20 (40 - 15 = 25)');
    assert.equal(await db.compactOps({ versions: null, ageMs: null }, Date.now(), 3), 3, 'a batch is bounded');
    assert.equal(await db.compactOps({ versions: null, ageMs: null }, Date.now(), 1000), 17, 'the rest, below milestone 40');
    await assert.rejects(
      call((done) => db.getOps('notes', 'aged', 0, null, null, done)),
      { code: TandemErrorCode.MISSING_OPS },
    );
    await call<void>((done) => doc.submitOp(['n', { ena: 1 }], {}, done));
    assert.equal(doc.version, 41);

    // Webhook cursors hold compaction here too, and list what is behind.
    const held = backend.connect().get('notes', 'held');
    await call<void>((done) => held.create({ n: 0 }, 'json1', done));
    await db.webhookCursors.ensure('http://receiver/hook', 'notes', 'held', 15);
    await db.webhookCursors.ensure('http://receiver/hook', 'notes', 'held', 3);
    for (let i = 0; i < 39; i++) await call<void>((done) => held.submitOp(['n', { ena: 1 }], {}, done));
    await waitFor(async () => (await store.query(`SELECT 1 FROM ${store.tables.milestones} WHERE id = 'held' AND v = 40`)).rowCount === 1, {
      what: 'milestone 40 of held',
    });
    assert.equal(
      await db.compactOps({ versions: null, ageMs: null }, Date.now(), 1000),
      10,
      'below milestone 10, the last at or before the cursor',
    );
    assert.deepEqual(
      await db.webhookCursors.backlog('http://receiver/hook'),
      [{ collection: 'notes', id: 'held', v: 15 }],
      'ensure never moves a cursor',
    );
    await db.webhookCursors.advance('http://receiver/hook', 'notes', 'held', 40);
    assert.deepEqual(await db.webhookCursors.backlog('http://receiver/hook'), []);
    assert.equal(await db.compactOps({ versions: null, ageMs: null }, Date.now(), 1000), 30);
    await call<void>((done) => backend.close(done));
  });
});

describe('OPLOG_RETENTION: two processes compacting one SQLite file while clients write on both', function () {
  this.timeout(90_000);
  let dir: string;
  const servers: ServerProcess[] = [];
  const closers: Array<() => unknown> = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-retention-procs-'));
  });
  after(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    for (const server of servers.splice(0)) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every acknowledged op from each cut on is in the store, each document is its cut milestone plus those ops, and both compacted', async () => {
    const env = {
      DB_URL: `sqlite:${join(dir, 'shared.db')}`,
      MILESTONE_INTERVAL: '20',
      OPLOG_RETENTION: 'versions=30',
      OPLOG_COMPACT_INTERVAL_MS: '100',
      OPS_PER_MINUTE: '1000000',
    };
    servers.push(await startServerProcess(env), await startServerProcess(env));
    const docs: Doc[] = [];
    for (const [n, server] of servers.entries()) {
      const client = stockClient(server.url);
      closers.push(() => client.close());
      for (let k = 0; k < 2; k++) {
        const doc = client.connection.get('notes', `p${n}-d${k}`);
        await create(doc, { n: 0, log: [] });
        docs.push(doc);
      }
    }
    const compactedBy = (server: ServerProcess) => server.logs.filter((l) => l.msg === 'op log compacted').length;
    let stop = false;
    const writing = docs.map(async (doc, i) => {
      for (let k = 0; !stop; k++) await submit(doc, k % 3 === 0 ? ['log', 0, { i: `w${i}-${k}` }] : ['n', { ena: 1 }]);
    });
    await waitFor(() => servers.every((s) => compactedBy(s) >= 2) && docs.every((d) => d.version! > 300), {
      timeoutMs: 60_000,
      what: 'both processes compacting while the documents pass v300',
    });
    stop = true;
    await Promise.all(writing);
    for (const server of servers) {
      assert.deepEqual(
        server.logs.filter((l) => (l.level as number) >= 40),
        [],
        'no warnings (compaction failures, busy store)',
      );
    }

    const path = join(dir, 'shared.db');
    const db = createSqliteDb({ path });
    const milestones = createSqliteMilestoneDb({ path, interval: 20 });
    try {
      for (const doc of docs) {
        const id = doc.id;
        const snapshot = await call<{ v: number; data?: unknown }>((done) => db.getSnapshot('notes', id, null, null, done));
        assert.equal(snapshot.v, doc.version, `${id}: every acknowledged op is committed`);
        const cut = snapshot.v - 30 - ((snapshot.v - 30) % 20);
        const milestone = await call<{ v: number; data?: unknown } | undefined>((done) =>
          milestones.getMilestoneSnapshot('notes', id, cut, done),
        );
        assert.ok(milestone && milestone.v <= cut, `${id}: a milestone at or before the cut ${cut}`);
        const ops = await call<StoredOp[]>((done) => db.getOps('notes', id, milestone!.v, null, null, done));
        assert.deepEqual(replay(ops, milestone!.data), snapshot.data, `${id}: milestone ${milestone!.v} + its ops is the snapshot`);
        await assert.rejects(
          call((done) => db.getOps('notes', id, 0, null, null, done)),
          { code: TandemErrorCode.MISSING_OPS },
          `${id}: the old ops are gone`,
        );
      }
    } finally {
      db.close();
      milestones.close();
    }
  });
});
