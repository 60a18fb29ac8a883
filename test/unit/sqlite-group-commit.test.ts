/**
 * SQLite group commit: with a Turn, every commit of an event-loop turn goes into one
 * transaction, COMMITted when the turn ends. Other connections see nothing before that;
 * the writer's own reads see everything at once (ShareDB builds the next commit on them); a
 * stale or failing commit undoes only itself; a failed COMMIT fails the turn and every
 * later write; milestone saves wait for the COMMIT instead of deadlocking on its lock; and
 * while another process writes the same file, each commit is its own transaction again.
 * After a turn of one write, the next turn's first commit is its own transaction (no
 * BEGIN/COMMIT), and the fail-stop rule holds for it too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'libsql';
import ShareDB from 'sharedb';
import type { QuerySnapshot } from '../../server/storage/mingo-query.js';
import { createSqliteMilestoneDb } from '../../server/storage/sqlite-milestone.js';
import type { MilestoneSnapshot } from '../../server/storage/milestone-lookups.js';
import { createSqliteDb, type SqliteDB, type StoredOp } from '../../server/storage/sqlite.js';
import { Turn } from '../../server/turn.js';
import { failCommits, rollBackWithNextStatement } from '../helpers/failing-commit.js';
import { waitFor } from '../helpers/wait.js';
import { call } from '../helpers/callback.js';

const JSON0 = 'http://sharejs.org/types/JSONv0';
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A Turn and the failures it reports. */
function watchedTurn(): { turn: Turn; failures: Error[] } {
  const turn = new Turn();
  const failures: Error[] = [];
  turn.onFailure((err) => failures.push(err));
  return { turn, failures };
}

/** Something the turn holds to send; the function answers whether the turn discarded it. */
function heldSend(turn: Turn): () => boolean {
  let discarded = false;
  turn.send((discard) => {
    discarded = discard;
  });
  return () => discarded;
}

const assertDiskFailure = (failures: Error[]) =>
  assert.deepEqual(
    failures.map((e) => e.message),
    ['disk I/O error'],
  );

/** Commit n of a counter doc: op at version n, snapshot at n + 1. */
function counterCommit(db: SqliteDB, id: string, n: number): boolean {
  const op: StoredOp = n === 0 ? { v: 0, create: { type: JSON0, data: { n: 0 } } } : { v: n, op: [{ p: ['n'], na: 1 }] };
  const snapshot: QuerySnapshot = { id, v: n + 1, type: JSON0, data: { n }, m: null };
  return db.commitOp('docs', id, op, snapshot);
}

describe('SqliteDB group commit (one transaction per turn)', function () {
  let dir: string;
  let file: string;
  const toClose: Array<{ close(cb?: () => void): void }> = [];
  function open(turn?: Turn, heartbeatMs?: number): SqliteDB {
    const db = createSqliteDb({ path: file, turn, busyTimeoutMs: 200, heartbeatMs });
    toClose.push(db);
    return db;
  }
  /** A writer whose last turn had two writes, so its next commits share the turn's transaction; docs a and b exist. */
  async function openAfterBusyTurn() {
    const { turn, failures } = watchedTurn();
    const writer = open(turn);
    assert.equal(counterCommit(writer, 'a', 0), true);
    assert.equal(counterCommit(writer, 'b', 0), true);
    await nextTurn();
    return { turn, failures, writer };
  }
  const versionOf = (db: SqliteDB, id: string) => call<QuerySnapshot>((cb) => db.getSnapshot('docs', id, null, null, cb)).then((s) => s.v);

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-group-commit-'));
    file = path.join(dir, 'tandem.db');
  });
  afterEach(function () {
    for (const db of toClose.splice(0)) db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('commits of one turn are visible to the writer at once and to other connections only after the turn', async () => {
    const turn = new Turn();
    const writer = open(turn);
    const reader = open();
    for (let n = 0; n < 5; n++) assert.equal(counterCommit(writer, 'a', n), true);
    assert.equal(counterCommit(writer, 'b', 0), true);
    assert.equal(await versionOf(writer, 'a'), 5, 'the writer reads its own turn');
    assert.equal((await call<StoredOp[]>((cb) => writer.getOps('docs', 'a', 0, null, null, cb))).length, 5);
    assert.equal(await versionOf(reader, 'a'), 0, 'another connection sees nothing yet');
    await nextTurn();
    assert.equal(await versionOf(reader, 'a'), 5);
    assert.equal(await versionOf(reader, 'b'), 1);
  });

  it('a stale commit in the turn answers false and leaves the others of the turn', async () => {
    const writer = open(new Turn());
    assert.equal(counterCommit(writer, 'a', 0), true);
    assert.equal(counterCommit(writer, 'a', 1), true);
    assert.equal(counterCommit(writer, 'a', 1), false, 'version 1 is taken');
    assert.equal(counterCommit(writer, 'a', 2), true);
    await nextTurn();
    assert.equal(await versionOf(open(), 'a'), 3);
  });

  it('a commit that throws undoes only its own rows', async () => {
    const writer = open(new Turn());
    assert.equal(counterCommit(writer, 'a', 0), true);
    const unencodable: StoredOp = { v: 1, op: [{ p: ['n'], na: 1 }], m: { big: 1n } };
    assert.throws(() => writer.commitOp('docs', 'a', unencodable, { id: 'a', v: 2, type: JSON0, data: { n: 1 }, m: null }));
    assert.equal(counterCommit(writer, 'a', 1), true);
    await nextTurn();
    const reader = open();
    assert.equal(await versionOf(reader, 'a'), 2);
    const ops = await call<StoredOp[]>((cb) => reader.getOps('docs', 'a', 0, null, { metadata: true }, cb));
    assert.equal(ops.length, 2);
    assert.equal(ops[1]!.m, undefined, 'the op stored at v1 is the good one');
  });

  it('a failed COMMIT fails the turn, rolls the turn back and refuses every later write', async () => {
    const { turn, failures, writer } = await openAfterBusyTurn();
    assert.equal(counterCommit(writer, 'a', 1), true);
    const restore = failCommits(writer);
    const discarded = heldSend(turn);
    await nextTurn();
    restore();
    assertDiskFailure(failures);
    assert.equal(discarded(), true, 'what the turn held is discarded');
    assert.equal(await versionOf(open(), 'a'), 1, 'the failed turn left nothing in the file');
    assert.throws(() => counterCommit(writer, 'a', 1), { code: 'TANDEM_STORAGE_ERROR' });
    assert.throws(() => writer.ping(), { code: 'TANDEM_STORAGE_ERROR' });
  });

  it('a turn whose transaction SQLite rolled back by itself after an error fails: none of its writes is acknowledged', async () => {
    const { turn, failures, writer } = await openAfterBusyTurn();
    assert.equal(counterCommit(writer, 'a', 1), true, 'reported as committed to ShareDB');
    const restore = rollBackWithNextStatement(writer);
    assert.throws(() => counterCommit(writer, 'b', 1));
    restore();
    const ack = heldSend(turn);
    await nextTurn();
    assert.deepEqual(
      failures.map((e) => e.message),
      ["SQLite rolled back the turn's transaction after an error in one of its statements"],
    );
    assert.equal(ack(), true, "the ack of a's commit is discarded: the commit is not in the file");
    assert.equal(await versionOf(open(), 'a'), 1);
    assert.throws(() => counterCommit(writer, 'a', 1), { code: 'TANDEM_STORAGE_ERROR' });
  });

  it("after a turn of one write, the next turn's first commit is durable at once and the rest wait for the turn's COMMIT", async () => {
    const writer = open(new Turn());
    // A bare connection: an adapter's reader would serve its cache within a turn.
    const bare = new Database(file);
    toClose.push(bare);
    const stored = () => (bare.prepare("SELECT v FROM heads WHERE collection = 'docs' AND id = 'a'").get() as { v: number } | undefined)?.v;
    assert.equal(counterCommit(writer, 'a', 0), true); // a create: a turn of one write
    await nextTurn();
    assert.equal(counterCommit(writer, 'a', 1), true);
    assert.equal(stored(), 2, 'the lone commit is its own transaction');
    assert.equal(counterCommit(writer, 'a', 2), true);
    assert.equal(counterCommit(writer, 'a', 1), false, 'a stale commit is still refused');
    assert.equal(stored(), 2, 'a second commit opened the turn transaction');
    await nextTurn();
    assert.equal(stored(), 3);
    // That turn had three writes: the next one groups from its first commit on.
    assert.equal(counterCommit(writer, 'a', 3), true);
    assert.equal(stored(), 3, 'after a busy turn the first commit waits for the turn');
    await nextTurn();
    assert.equal(stored(), 4);
    // And a turn of one write makes the next one commit at once again.
    assert.equal(counterCommit(writer, 'a', 4), true);
    assert.equal(stored(), 5);
  });

  it('a lone commit whose own COMMIT fails fails the turn as a failed group COMMIT does', async () => {
    const { turn, failures } = watchedTurn();
    const writer = open(turn);
    assert.equal(counterCommit(writer, 'a', 0), true);
    await nextTurn();
    const restore = failCommits(writer);
    assert.throws(() => counterCommit(writer, 'a', 1), { message: 'disk I/O error' });
    const discarded = heldSend(turn);
    assert.equal(failures.length, 0, 'not yet: the turn has not ended');
    await nextTurn();
    restore();
    assertDiskFailure(failures);
    assert.equal(discarded(), true, 'what the turn held (the error reply too) is discarded');
    assert.equal(await versionOf(open(), 'a'), 1, 'nothing of the failed turn is in the file');
    assert.throws(() => counterCommit(writer, 'a', 1), { code: 'TANDEM_STORAGE_ERROR' });
  });

  it('a lone commit that times out waiting for the write lock goes to the caller and does not fail the turn', async () => {
    const { turn, failures } = watchedTurn();
    const writer = open(turn);
    assert.equal(counterCommit(writer, 'a', 0), true);
    await nextTurn();
    // A bare connection (no Tandem writer, so the writer still groups) holds the write lock.
    const holder = new Database(file);
    try {
      holder.exec('BEGIN IMMEDIATE');
      assert.throws(() => counterCommit(writer, 'a', 1), { code: /^SQLITE_BUSY/ });
      holder.exec('ROLLBACK');
    } finally {
      holder.close();
    }
    await nextTurn();
    assert.deepEqual(failures, []);
    assert.equal(counterCommit(writer, 'a', 1), true, 'the writer goes on');
    await nextTurn();
    assert.equal(await versionOf(open(), 'a'), 2);
  });

  it('close() COMMITs a turn still open', async () => {
    const writer = open(new Turn());
    assert.equal(counterCommit(writer, 'a', 0), true);
    await call<void>((cb) => writer.close(cb));
    assert.equal(await versionOf(open(), 'a'), 1);
  });

  it('a milestone save (own connection) waits for the COMMIT instead of for its lock', async function () {
    const turn = new Turn();
    const db = open(turn);
    const milestoneDb = createSqliteMilestoneDb({ path: file, interval: 2, turn, busyTimeoutMs: 200 });
    toClose.push(milestoneDb);
    const backend = new ShareDB({ db, milestoneDb });
    const saved = new Promise<void>((resolve, reject) => {
      milestoneDb.once('save', () => resolve());
      milestoneDb.once('error', reject);
    });
    const doc = backend.connect().get('docs', 'm');
    await call<void>((cb) => doc.create({ n: 0 }, JSON0, cb));
    await call<void>((cb) => doc.submitOp([{ p: ['n'], na: 1 }], {}, cb));
    await saved;
    const milestone = await call<{ v: number } | undefined>((cb) => milestoneDb.getMilestoneSnapshot('docs', 'm', null, cb));
    assert.equal(milestone?.v, 2);
    await call<void>((cb) => backend.close(cb));
  });

  it("a milestone save waits for the turn's COMMIT also when the turn's transaction opened after the save was asked for", async () => {
    // Seen under load: a turn's lone first commit (no transaction), its milestone save, then
    // a second commit opening the transaction; the save ran before that COMMIT and waited for
    // the lock its own thread held: the whole server stalled for the busy timeout (5 s by
    // default) and the milestone was lost (SQLITE_BUSY).
    const turn = new Turn();
    const writer = open(turn);
    const milestoneDb = createSqliteMilestoneDb({ path: file, interval: 1000, turn, busyTimeoutMs: 200 });
    toClose.push(milestoneDb);
    assert.equal(counterCommit(writer, 'a', 0), true); // a turn of one write
    await nextTurn();
    assert.equal(counterCommit(writer, 'a', 1), true); // so this one commits on its own
    const milestone: MilestoneSnapshot = { id: 'a', v: 2, type: JSON0, data: { n: 1 }, m: null };
    const saved = call<void>((cb) => milestoneDb.saveMilestoneSnapshot('docs', milestone, cb));
    assert.equal(counterCommit(writer, 'b', 0), true); // opens the turn's transaction
    await saved; // before the fix: SQLITE_BUSY once the busy timeout passed
    const stored = await call<{ v: number } | undefined>((cb) => milestoneDb.getMilestoneSnapshot('docs', 'a', null, cb));
    assert.equal(stored?.v, 2);
    assert.equal(await versionOf(writer, 'b'), 1);
  });

  it('a milestone of a commit whose turn failed is not saved, and its caller is told', async () => {
    const { turn, writer } = await openAfterBusyTurn();
    const milestoneDb = createSqliteMilestoneDb({ path: file, interval: 1000, turn, busyTimeoutMs: 200 });
    toClose.push(milestoneDb);
    assert.equal(counterCommit(writer, 'a', 1), true);
    const milestone: MilestoneSnapshot = { id: 'a', v: 2, type: JSON0, data: { n: 1 }, m: null };
    const saved = call<void>((cb) => milestoneDb.saveMilestoneSnapshot('docs', milestone, cb));
    const restore = failCommits(writer);
    await assert.rejects(saved, { code: 'TANDEM_STORAGE_ERROR' });
    restore();
    const stored = await call<unknown>((cb) => milestoneDb.getMilestoneSnapshot('docs', 'a', null, cb));
    assert.equal(stored, undefined);
  });

  it('falls back to one transaction per commit while another process writes the file, and groups again once it is gone', async function () {
    this.timeout(30_000);
    const peersOf = (db: SqliteDB) => (db as unknown as { peers: { alone: boolean } }).peers;
    const a = open(new Turn(), 20);
    const reader = open(); // no turn: not a group-commit writer
    assert.equal(peersOf(a).alone, true);
    // A second server process on the same file; SIGKILLed below, so its row goes stale.
    const childCode = `
      import { createSqliteDb } from './server/storage/sqlite.ts';
      import { Turn } from './server/turn.ts';
      createSqliteDb({ path: process.env.DB_FILE, turn: new Turn(), heartbeatMs: 20 });
      console.log('ready');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', childCode], {
      cwd: REPO_ROOT,
      env: { ...process.env, DB_FILE: file },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await waitFor(() => !peersOf(a).alone, { timeoutMs: 15_000, what: 'the writer to see the other process' });
      assert.equal(counterCommit(a, 'x', 0), true);
      assert.equal(await versionOf(reader, 'x'), 1, 'committed at once, not at the end of the turn');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    await waitFor(() => peersOf(a).alone, { timeoutMs: 5000, what: "the dead process's heartbeat to go stale" });
    // The turn's first commit is its own transaction (the last turn had one write); the second groups.
    assert.equal(counterCommit(a, 'x', 1), true);
    assert.equal(counterCommit(a, 'x', 2), true);
    assert.equal(await versionOf(reader, 'x'), 2, 'grouped again: the second commit visible only after the turn');
    await nextTurn();
    assert.equal(await versionOf(reader, 'x'), 3);
  });

  it('does not group while a second server of this process writes the same file', async () => {
    const peersOf = (db: SqliteDB) => (db as unknown as { peers: { alone: boolean } }).peers;
    const a = open(new Turn());
    const b = open(new Turn());
    assert.equal(peersOf(a).alone, false);
    assert.equal(counterCommit(a, 'y', 0), true);
    assert.equal(counterCommit(b, 'y', 1), true, 'b is not blocked by a turn-long lock of a');
    await call<void>((cb) => b.close(cb));
    assert.equal(peersOf(a).alone, true);
  });

  it('a connection opened in this process mid-turn first has the open turn COMMITted, instead of waiting for its lock', async () => {
    const { turn, failures } = watchedTurn();
    const writer = open(turn);
    assert.equal(counterCommit(writer, 'z', 0), true); // the turn's transaction is open now
    const reader = open(); // its schema transaction needs the write lock (busy timeout 200 ms)
    assert.equal(await versionOf(reader, 'z'), 1, 'committed early, visible at once');
    assert.equal(counterCommit(writer, 'z', 1), true, 'the writer goes on in a new transaction');
    await nextTurn();
    assert.equal(await versionOf(reader, 'z'), 2);
    assert.deepEqual(failures, []);
  });

  it('an early COMMIT that fails still fails the turn when it ends', async () => {
    const { turn, failures } = watchedTurn();
    const writer = open(turn);
    assert.equal(counterCommit(writer, 'w', 0), true);
    const restore = failCommits(writer);
    const discarded = heldSend(turn);
    open(); // triggers the early COMMIT, which fails
    assert.equal(failures.length, 0, 'not yet: the turn has not ended');
    await nextTurn();
    restore();
    assertDiskFailure(failures);
    assert.equal(discarded(), true);
  });
});
