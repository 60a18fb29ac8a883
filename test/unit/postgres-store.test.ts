/**
 * The PostgreSQL store beyond ShareDB's conformance suite: concurrent migrations, commits
 * racing from two instances, the bounded pool, ping() against a server that never answers,
 * an unreachable server as TANDEM_STORAGE_ERROR, openStorage and config, and passwords kept
 * out of every message.
 *
 * The tests that need PostgreSQL (PG_TEST_URL) fail under CI=true without it and are skipped
 * loudly otherwise; the ones against fake or closed ports always run.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { loadConfig } from '../../server/config.js';
import { openStorage } from '../../server/storage/index.js';
import type { QuerySnapshot } from '../../server/storage/mingo-query.js';
import { parsePostgresUrl, PING_TIMEOUT_MS, PostgresStore, redactUrl } from '../../server/storage/postgres-connection.js';
import { LATEST_SCHEMA_VERSION } from '../../server/storage/postgres-schema.js';
import { createPostgresStorage } from '../../server/storage/postgres-storage.js';
import { PostgresDB } from '../../server/storage/postgres.js';
import type { StoredOp } from '../../server/storage/sqlite.js';
import { PG_TEST_URL, postgresUnavailable, TestSchemas } from '../helpers/postgres.js';
import { requireService } from '../helpers/skip.js';
import { call } from '../helpers/callback.js';

const JSON0 = 'http://sharejs.org/types/JSONv0';

function closeDb(db: { close(cb: (err?: Error) => void): void } | undefined): Promise<void> {
  return new Promise((resolve, reject) => (db ? db.close((err) => (err ? reject(err) : resolve())) : resolve()));
}

function commit(db: PostgresDB, id: string, v: number, data: unknown, extra: Partial<StoredOp> = {}): Promise<boolean> {
  const op: StoredOp = v === 0 ? { v, create: { type: JSON0, data }, ...extra } : { v, op: [], ...extra };
  const snapshot: QuerySnapshot = { id, v: v + 1, type: JSON0, data, m: { mtime: v } };
  return call<boolean>((cb) => db.commit('docs', id, op, snapshot, null, cb));
}

/** A TCP server that accepts connections and never answers (a hung PostgreSQL). */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on (taken from the OS, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('PostgreSQL store', function () {
  describe('without a PostgreSQL', function () {
    const cleanups: Array<() => Promise<void>> = [];
    afterEach(async function () {
      for (const cleanup of cleanups.splice(0)) await cleanup();
    });

    it(`ping() rejects within ~${PING_TIMEOUT_MS} ms when the server accepts but never answers`, async function () {
      const server = await silentServer();
      const store = new PostgresStore({ url: `postgres://tandem:s3cret@127.0.0.1:${server.port}/db` });
      // The server first: its closed sockets fail the pending connects, so the pool ends at once.
      cleanups.push(
        () => server.close(),
        () => store.end(),
      );
      const started = performance.now();
      await assert.rejects(store.ping(), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'TANDEM_STORAGE_ERROR');
        assert.match(err.message, /did not answer within 2000 ms/);
        assert.doesNotMatch(err.message, /s3cret/);
        return true;
      });
      const took = performance.now() - started;
      assert.ok(took >= PING_TIMEOUT_MS - 50 && took < PING_TIMEOUT_MS + 1000, `ping took ${took} ms`);
    });

    it('an unreachable server fails reads and commits with TANDEM_STORAGE_ERROR, password unsaid', async function () {
      const port = await closedPort();
      const storage = createPostgresStorage({ url: `postgresql://tandem:s3cret@127.0.0.1:${port}/db?schema=nowhere` });
      cleanups.push(() => storage.close());
      for (const attempt of [
        () => commit(storage.db, 'a', 0, {}),
        () => call((cb) => storage.db.getSnapshot('docs', 'a', null, null, cb)),
        () => call((cb) => storage.db.queryPoll('docs', {}, null, cb)),
        () => call((cb) => storage.milestoneDb.getMilestoneSnapshot('docs', 'a', null, (err, s) => cb(err ?? null, s))),
        () => storage.ping(),
      ]) {
        await assert.rejects(attempt(), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'TANDEM_STORAGE_ERROR');
          assert.match(err.message, /^PostgreSQL failed: /);
          assert.doesNotMatch(err.message, /s3cret/);
          return true;
        });
      }
    });

    it('parses the URL: schema parameter out, password never echoed', function () {
      assert.deepEqual(parsePostgresUrl('postgres://u:p@h:5432/db?schema=tenant_1&sslmode=disable'), {
        connectionString: 'postgres://u:p@h:5432/db?sslmode=disable',
        schema: 'tenant_1',
      });
      assert.equal(parsePostgresUrl('postgresql://h/db').schema, null);
      assert.equal(redactUrl('postgres://u:p4ss@h/db'), 'postgres://u:***@h/db');
      assert.throws(
        () => openStorage('postgres://u:p4ss@h/db?schema=bad-name'),
        (err: Error) => {
          assert.match(err.message, /schema names must be identifiers/);
          assert.match(err.message, /postgres:\/\/u:\*\*\*@h\/db/);
          assert.doesNotMatch(err.message, /p4ss/);
          return true;
        },
      );
      assert.throws(
        () => parsePostgresUrl('postgres://u:p4ss@[bad/db'),
        (err: Error) => !err.message.includes('p4ss'),
      );
    });

    it('config: DB_URL accepts postgres:// and postgresql://, PG_POOL_MAX defaults to 10', function () {
      assert.equal(loadConfig({ DB_URL: 'postgres://h/db' }).pgPoolMax, 10);
      assert.equal(loadConfig({ DB_URL: 'postgresql://h/db', PG_POOL_MAX: '3' }).pgPoolMax, 3);
      assert.throws(() => loadConfig({ PG_POOL_MAX: '0' }), { code: 'TANDEM_BAD_CONFIG', message: /PG_POOL_MAX/ });
    });
  });

  describe('against PostgreSQL', function () {
    const schemas = new TestSchemas();

    before(async function () {
      const reason = await postgresUnavailable();
      requireService(this, reason === null, reason ?? '');
    });

    after(async function () {
      await schemas.dropAll();
    });

    /** A store of its own on `schema`, ended by dropAll if the test does not end it. */
    function storeOn(schema: string, poolMax = 4): PostgresStore {
      return new PostgresStore({ url: PG_TEST_URL, schema, poolMax });
    }

    it('migrates once when three instances start on a fresh schema at the same moment', async function () {
      const schema = schemas.name();
      const stores = [storeOn(schema), storeOn(schema), storeOn(schema)];
      try {
        await Promise.all(stores.map((s) => s.ready()));
        const versions = await stores[0]!.query<{ version: number }>(
          `SELECT version FROM ${stores[0]!.tables.schemaVersion} ORDER BY version`,
        );
        assert.deepEqual(
          versions.rows.map((r) => r.version),
          Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1),
        );
        // Every instance works on the same tables.
        const dbs = stores.map((s) => new PostgresDB(s));
        assert.equal(await commit(dbs[0]!, 'a', 0, { n: 1 }), true);
        const seen = await call<QuerySnapshot>((cb) => dbs[2]!.getSnapshot('docs', 'a', null, null, cb));
        assert.deepEqual(seen.data, { n: 1 });
        await Promise.all(dbs.map((db) => closeDb(db)));
      } finally {
        await Promise.all(stores.map((s) => s.end()));
      }
    });

    it('refuses a schema migrated by a newer server', async function () {
      const store = await schemas.store();
      await store.query(`INSERT INTO ${store.tables.schemaVersion} (version) VALUES ($1)`, [LATEST_SCHEMA_VERSION + 1]);
      const newer = storeOn(store.tables.schema!);
      try {
        await assert.rejects(newer.ready(), /newer than this server knows/);
      } finally {
        await newer.end();
      }
    });

    it('of two instances committing the same version, exactly one wins; ShareDB retries the other', async function () {
      const schema = (await schemas.store()).tables.schema!;
      const a = new PostgresDB(storeOn(schema));
      const b = new PostgresDB(storeOn(schema));
      try {
        for (let round = 0; round < 10; round++) {
          const id = `doc${round}`;
          // Creates: no row to lock, the ops primary key decides.
          const creates = await Promise.all([commit(a, id, 0, { by: 'a' }), commit(b, id, 0, { by: 'b' })]);
          assert.deepEqual(creates.filter(Boolean).length, 1, `round ${round}: ${creates}`);
          // Edits: the row lock decides.
          const edits = await Promise.all([commit(a, id, 1, { v: 'a' }), commit(b, id, 1, { v: 'b' })]);
          assert.deepEqual(edits.filter(Boolean).length, 1, `round ${round}: ${edits}`);
          const ops = await call<StoredOp[]>((cb) => a.getOps('docs', id, 0, null, null, cb));
          assert.deepEqual(
            ops.map((op) => op.v),
            [0, 1],
          );
        }
        assert.equal(await commit(a, 'doc0', 1, {}), false, 'a stale version is refused');
        assert.equal(await commit(a, 'doc0', 2, {}), true);
      } finally {
        await closeDb(a);
        await closeDb(b);
      }
    });

    it("keeps a deleted document's version and finds resent ops by src/seq", async function () {
      const db = new PostgresDB(await schemas.store());
      try {
        assert.equal(await commit(db, 'a', 0, { n: 1 }, { src: 'client1', seq: 1 }), true);
        const del = await call<boolean>((cb) =>
          db.commit(
            'docs',
            'a',
            { v: 1, del: true, src: 'client1', seq: 2 },
            { id: 'a', v: 2, type: null, data: undefined, m: null },
            null,
            cb,
          ),
        );
        assert.equal(del, true);
        assert.deepEqual(await call((cb) => db.getSnapshot('docs', 'a', null, null, cb)), {
          id: 'a',
          v: 2,
          type: null,
          data: undefined,
          m: null,
        });
        const version = (seq: number) =>
          call<number | undefined>((cb) => db.getCommittedOpVersion('docs', 'a', { v: 2 }, { v: 0, src: 'client1', seq }, null, cb));
        assert.equal(await version(1), 0);
        assert.equal(await version(2), 1);
        assert.equal(await version(3), undefined);
        // A `to` past the current version returns what exists (ShareDB reports the version).
        const ops = await call<StoredOp[]>((cb) => db.getOps('docs', 'a', 0, 5, null, cb));
        assert.deepEqual(
          ops.map((op) => op.v),
          [0, 1],
        );
      } finally {
        await closeDb(db);
      }
    });

    it('never opens more connections than poolMax; requests queue for one', async function () {
      const store = await schemas.store({ poolMax: 2 });
      const sleeping = Array.from({ length: 6 }, () => store.query('SELECT pg_sleep(0.05)'));
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(store.poolState.total <= 2, JSON.stringify(store.poolState));
      assert.ok(store.poolState.waiting >= 4, JSON.stringify(store.poolState));
      await Promise.all(sleeping);
      assert.ok(store.poolState.total <= 2);
    });

    it('openStorage(postgres://…?schema=…): pings, closes idempotently, then refuses', async function () {
      const url = new URL(PG_TEST_URL);
      url.searchParams.set('schema', schemas.name());
      const storage = openStorage(url.href, { milestoneInterval: 10, pgPoolMax: 3 });
      assert.equal(storage.kind, 'postgres');
      assert.deepEqual(storage.state(), {
        kind: 'postgres',
        pool: { total: 0, idle: 0, waiting: 0 },
        snapshotCache: { documents: 0, bytes: 0 },
      });
      await storage.ping();
      assert.equal((storage.milestoneDb as unknown as { interval: number }).interval, 10);
      await storage.close();
      await storage.close();
      await assert.rejects(storage.ping(), { code: 'TANDEM_DB_CLOSED' });
      await assert.rejects(
        call((cb) => storage.db.getSnapshot('docs', 'a', null, null, cb)),
        { code: 'TANDEM_DB_CLOSED' },
      );
    });

    it('the pool survives PostgreSQL ending its connections (a restart)', async function () {
      // An application_name of its own, so only this store's connections are ended.
      const appName = `tandem_restart_${process.pid}_${Date.now()}`;
      const url = new URL(PG_TEST_URL);
      url.searchParams.set('application_name', appName);
      const store = await schemas.store({ url: url.href, poolMax: 2 });
      const admin = new pg.Client({ connectionString: PG_TEST_URL });
      await admin.connect();
      try {
        const ended = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [appName]);
        assert.ok(ended.rowCount! >= 1);
      } finally {
        await admin.end();
      }
      // Idle connections that died are dropped by the pool; a request right after may still
      // meet one: at most one failure (TANDEM_STORAGE_ERROR), then answers again.
      let failures = 0;
      for (let i = 0; i < 3; i++) {
        try {
          await store.ping();
        } catch (err) {
          failures++;
          assert.equal((err as { code?: string }).code, 'TANDEM_STORAGE_ERROR');
        }
      }
      assert.ok(failures <= 2, `${failures} failures`);
      await store.ping();
    });
  });
});
