/**
 * `tandem backup <file>` (server/cli/backup-command.ts) against a live server process on
 * SQLite: writers keep committing while the copy is taken; the copy holds every document's
 * snapshot with exactly the ops before it (a replay of its ops gives its snapshot); a server
 * started on a copy of it (the documented restore) serves those versions and takes new ops;
 * and the command refuses, with a code, to overwrite a file or to copy what is not SQLite.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as json1 from 'ot-json1';
import type { Doc } from '../helpers/clients.js';
import { createSqliteDb, type SqliteDB } from '../../server/storage/sqlite.js';
import { create, fetchDoc, stockClient, submit } from '../helpers/clients.js';
import { spawnJsonLines } from '../helpers/json-lines-process.js';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { waitFor } from '../helpers/wait.js';
import { call } from '../helpers/callback.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI (as users run it): a process starts in a fraction of the time tsx takes. */
const BIN = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url));
const C = 'notes';
const WRITERS = 4;
/** Text each document starts with, so the store is more than a few pages. */
const FILLER = 'lorem ipsum '.repeat(4000);
/** The writers type far faster than a person: the per-user op rate is not what is tested. */
const UNLIMITED = { OPS_PER_MINUTE: '10000000' };

interface Run {
  code: number | null;
  stdout: Array<Record<string, unknown>>;
  stderr: string;
}

async function runBackup(target: string, dbUrl: string): Promise<Run> {
  const child = spawnJsonLines([BIN, 'backup', target], { env: { ...process.env, DB_URL: dbUrl } });
  child.child.stdin?.end();
  const [code] = (await child.exited) as [number | null];
  return { code, stdout: child.events, stderr: child.stderr() };
}

describe('tandem backup: a consistent copy of a live SQLite store', function () {
  this.timeout(90_000);
  let dir: string;
  let server: ServerProcess | null = null;
  let restored: ServerProcess | null = null;
  const cleanups: Array<() => unknown> = [];

  before(function () {
    this.timeout(120_000);
    execFileSync(process.execPath, ['scripts/build.mjs', '--if-needed'], { cwd: ROOT, stdio: 'ignore' });
    dir = mkdtempSync(join(tmpdir(), 'tandem-backup-'));
  });
  after(async () => {
    for (const clean of cleanups.splice(0).reverse()) await clean();
    await server?.stop();
    await restored?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies while writers commit; every document in the copy is its ops replayed; a server on the copy goes on from there', async () => {
    const dbUrl = `sqlite:${join(dir, 'live.db')}`;
    server = await startServerProcess({ DB_URL: dbUrl, ...UNLIMITED });
    const client = stockClient(server.url);
    cleanups.push(() => client.close());
    const docs: Doc[] = [];
    for (let i = 0; i < WRITERS; i++) {
      const doc = client.connection.get(C, `doc-${i}`);
      await create(doc, { text: FILLER, n: 0, log: [] });
      docs.push(doc);
    }
    let acks = 0;
    let stop = false;
    const writing = docs.map(async (doc, i) => {
      for (let k = 0; !stop; k++) {
        await submit(doc, k % 2 === 0 ? ['n', { ena: 1 }] : ['log', 0, { i: `w${i}-${k}` }]);
        acks++;
      }
    });
    await waitFor(() => acks >= 200, { timeoutMs: 20_000, what: '200 ops committed before the backup' });

    const target = join(dir, 'backup.db');
    const acksBefore = acks;
    const run = await runBackup(target, dbUrl);
    const acksDuring = acks - acksBefore;
    await waitFor(() => acks >= acksBefore + acksDuring + 50, { timeoutMs: 20_000, what: 'writers still committing after the backup' });
    stop = true;
    await Promise.all(writing);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    const report = run.stdout[0]!;
    assert.equal(report.file, target);
    assert.equal(report.bytes, statSync(target).size);
    assert.equal(report.documents, WRITERS);
    assert.ok(acksDuring > 0, 'writes went on while the backup process ran');
    console.log(`      backup: ${report.bytes} bytes, ${report.ops} ops in ${report.ms} ms; ${acksDuring} ops acked meanwhile`);

    // The copy: each document's snapshot is exactly its ops replayed, at a version the live
    // store had passed (the copy is the store as of one commit, not a mix).
    const copy: SqliteDB = createSqliteDb({ path: target });
    cleanups.push(() => copy.close());
    const inCopy = new Map<string, number>();
    let opsInCopy = 0;
    for (let i = 0; i < WRITERS; i++) {
      const id = `doc-${i}`;
      const snapshot = await call<{ v: number; data?: unknown }>((done) => copy.getSnapshot(C, id, null, null, done));
      const ops = await call<Array<{ v: number; create?: { data: unknown }; op?: unknown }>>((done) =>
        copy.getOps(C, id, 0, null, null, done),
      );
      assert.deepEqual(
        ops.map((op) => op.v),
        Array.from({ length: snapshot.v }, (_, v) => v),
        `${id}: ops 0…${snapshot.v - 1}, no gap, none past the snapshot`,
      );
      let data = ops[0]!.create!.data;
      for (const op of ops.slice(1)) data = json1.type.apply(data as json1.Doc, op.op as json1.JSONOp);
      assert.deepEqual(data, snapshot.data, `${id}: the replay of its ops is its snapshot`);
      assert.ok(snapshot.v > 1 && snapshot.v <= docs[i]!.version!, `${id} at v${snapshot.v} (live: v${docs[i]!.version})`);
      inCopy.set(id, snapshot.v);
      opsInCopy += ops.length;
    }
    assert.equal(report.ops, opsInCopy);

    // Restore as documented: stop nothing, copy the backup to a new file, start a server on it.
    const restoredFile = join(dir, 'restored.db');
    copyFileSync(target, restoredFile);
    restored = await startServerProcess({ DB_URL: `sqlite:${restoredFile}`, ...UNLIMITED });
    const reader = stockClient(restored.url);
    cleanups.push(() => reader.close());
    for (const [id, v] of inCopy) {
      const doc = reader.connection.get(C, id);
      await fetchDoc(doc);
      assert.equal(doc.version, v, `${id} restored at the backup's version`);
      await submit(doc, ['n', { ena: 1 }]);
      assert.equal(doc.version, v + 1);
    }
  });

  it('refuses to overwrite a file, and to copy a store that is not a SQLite file, each with a code', async () => {
    const existing = join(dir, 'backup.db');
    const before = readFileSync(existing);
    const again = await runBackup(existing, `sqlite:${join(dir, 'live.db')}`);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^tandem: TANDEM_BAD_CONFIG: .*exists; tandem backup never overwrites a file/);
    assert.ok(readFileSync(existing).equals(before), 'the file is untouched');

    const postgres = await runBackup(join(dir, 'pg.db'), 'postgres://127.0.0.1/test');
    assert.equal(postgres.code, 1);
    assert.match(postgres.stderr, /TANDEM_BAD_CONFIG: DB_URL is postgres:…; tandem backup copies SQLite stores/);
    const memory = await runBackup(join(dir, 'mem.db'), 'sqlite::memory:');
    assert.equal(memory.code, 1);
    assert.match(memory.stderr, /TANDEM_BAD_CONFIG: DB_URL is an in-memory SQLite database/);
  });
});
