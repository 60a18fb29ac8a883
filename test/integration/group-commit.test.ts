/**
 * Group commit in a running server. Fail-stop: when the turn's COMMIT fails, ShareDB has
 * already been told the commit succeeded, so the server must not let the ack (or the
 * broadcast) out: the client sees its connection dropped without an ack, the server reports
 * the fatal error, and the file does not hold the op — the client's resend, elsewhere or
 * after a restart, is the one that commits it. Also: what /metrics says about group commit,
 * and the SQLITE_GROUP_COMMIT setting.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ops } from '../../ot-types/index.js';
import { loadConfig } from '../../server/config.js';
import { createSqliteDb, type SqliteDB } from '../../server/storage/sqlite.js';
import { create, socketClient, stockClient, subscribe, type Doc } from '../helpers/clients.js';
import { failCommits } from '../helpers/failing-commit.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

describe('group commit: a failed COMMIT', function () {
  this.timeout(20_000);
  let server: TestServer | null = null;
  const cleanups: Array<() => void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) c();
    await server?.close();
    server = null;
  });

  for (const transport of ['socket.io', 'raw WebSocket'] as const) {
    it(`drops every client without acking, reports it, and leaves nothing in the store (${transport})`, async () => {
      server = await startTestServer();
      const writer = transport === 'socket.io' ? socketClient(server.url) : stockClient(server.url);
      const watcher = socketClient(server.url);
      cleanups.push(
        () => writer.close(),
        () => watcher.close(),
      );
      const doc: Doc = writer.connection.get('notes', 'fail-stop');
      await create(doc, { items: [] });
      const watched = watcher.connection.get('notes', 'fail-stop');
      await subscribe(watched);

      const fatal = new Promise<Error>((resolve) => server!.onFatal(resolve));
      cleanups.push(failCommits(server.backend.db));

      let acked = false;
      doc.submitOp(ops.insert(['items', 0], 'lost?'), {}, (err) => {
        if (!err) acked = true;
      });
      const err = await fatal;
      assert.equal(err.message, 'disk I/O error');
      await waitFor(() => writer.connection.state !== 'connected' && watcher.connection.state !== 'connected', {
        timeoutMs: 5000,
        what: 'both clients dropped',
      });
      assert.equal(acked, false, 'the ack never left the server');
      assert.deepEqual(watched.data, { items: [] }, 'the broadcast never left the server either');
      assert.equal(doc.hasPending(), true, 'the op waits in the client for its resend');

      const reader: SqliteDB = createSqliteDb({ path: join(server.dir, 'tandem.db') });
      cleanups.push(() => reader.close());
      const stored = await new Promise<{ v: number; data?: unknown }>((resolve, reject) =>
        reader.getSnapshot('notes', 'fail-stop', null, null, (e, s) => (e ? reject(e) : resolve(s!))),
      );
      assert.equal(stored.v, 1);
      assert.deepEqual(stored.data, { items: [] });
    });
  }
});

describe('group commit in /metrics', function () {
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  const storeOf = async (s: TestServer) =>
    ((await (await fetch(`${s.url}/metrics.json`)).json()) as { store: { kind: string; groupCommit?: string; walCheckpoints?: unknown } })
      .store;

  it('says on for a lone instance, paused while a second one writes the same file, off when configured off', async () => {
    const first = await startTestServer();
    servers.push(first);
    assert.deepEqual(await storeOf(first), {
      kind: 'sqlite',
      groupCommit: 'on',
      walCheckpoints: { mode: 'background' },
      snapshotCache: { documents: 0, bytes: 0, unwritten: 0, failedWrites: 0 },
    });
    const second = await startTestServer({ DB_URL: `sqlite:${join(first.dir, 'tandem.db')}` });
    servers.push(second);
    assert.equal((await storeOf(first)).groupCommit, 'paused');
    assert.equal((await storeOf(second)).groupCommit, 'paused');
    await servers.pop()!.close();
    assert.equal((await storeOf(first)).groupCommit, 'on');
    const off = await startTestServer({ SQLITE_GROUP_COMMIT: 'false', SQLITE_CHECKPOINTS: 'inline' });
    servers.push(off);
    assert.equal((await storeOf(off)).groupCommit, 'off');
    assert.deepEqual((await storeOf(off)).walCheckpoints, { mode: 'inline' });
    const memory = await startTestServer({ DB_URL: 'memory:' });
    servers.push(memory);
    assert.deepEqual(await storeOf(memory), { kind: 'memory' });
  });
});

describe('SQLITE_GROUP_COMMIT', () => {
  it('defaults to true, takes true/false, and refuses anything else with TANDEM_BAD_CONFIG', () => {
    assert.equal(loadConfig({}).sqliteGroupCommit, true);
    assert.equal(loadConfig({ SQLITE_GROUP_COMMIT: 'false' }).sqliteGroupCommit, false);
    assert.equal(loadConfig({ SQLITE_GROUP_COMMIT: 'TRUE' }).sqliteGroupCommit, true);
    assert.throws(() => loadConfig({ SQLITE_GROUP_COMMIT: 'maybe' }), {
      code: 'TANDEM_BAD_CONFIG',
      message: /SQLITE_GROUP_COMMIT must be true or false/,
    });
  });
});
