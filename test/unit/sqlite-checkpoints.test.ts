/**
 * WAL checkpoints off the event loop (server/storage/sqlite-checkpointer.ts): the store's own
 * commits never checkpoint once the thread runs, the thread does, its TRUNCATE never holds the
 * store's commits back while a reader keeps the WAL, a failed thread hands checkpoints back to
 * the store, and close() ends the thread with its connection closed.
 *
 * Checkpoints are seen in the database file itself: in WAL mode committed pages reach it only
 * through a checkpoint, so its size grows exactly when one ran.
 */
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { QuerySnapshot } from '../../server/storage/mingo-query.js';
import Database from 'libsql';
import { TRUNCATE_AFTER_FRAMES, type CheckpointTriggers, type SqliteCheckpointer } from '../../server/storage/sqlite-checkpointer.js';
import { createSqliteDb, type SqliteDB, type SqliteOptions, type StoredOp } from '../../server/storage/sqlite.js';
import { waitFor } from '../helpers/wait.js';

const JSON0 = 'http://sharejs.org/types/JSONv0';
/** Each commit is its own transaction (no turn): 2–3 WAL pages, so this many pass SQLite's 1,000-page checkpoint. */
const COMMITS_PAST_A_CHECKPOINT = 1500;
/** Checkpoint triggers that never fire within a test. */
const NEVER: CheckpointTriggers = { everyCommits: 1_000_000, intervalMs: 3_600_000 };

/** Commit n of a counter doc whose value carries some bytes. */
function counterCommit(db: SqliteDB, id: string, n: number): void {
  const op: StoredOp = n === 0 ? { v: 0, create: { type: JSON0, data: { n: 0 } } } : { v: n, op: [{ p: ['n'], na: 1 }] };
  const snapshot: QuerySnapshot = { id, v: n + 1, type: JSON0, data: { n }, m: null };
  assert.equal(db.commitOp('docs', id, op, snapshot), true, `commit ${n} of ${id}`);
}

describe('SqliteDB WAL checkpoints (SQLITE_CHECKPOINTS)', function () {
  this.timeout(30_000);
  let dir: string;
  let file: string;
  const opened: SqliteDB[] = [];
  const versions = new Map<string, number>();

  function open(opts: Partial<SqliteOptions>): SqliteDB {
    const db = createSqliteDb({ path: file, ...opts });
    opened.push(db);
    return db;
  }
  /** `count` more commits, spread over four documents. */
  function commitMany(db: SqliteDB, count: number): void {
    for (let i = 0; i < count; i++) {
      const id = `doc${i % 4}`;
      const v = versions.get(id) ?? 0;
      counterCommit(db, id, v);
      versions.set(id, v + 1);
    }
  }
  const fileBytes = () => fs.statSync(file).size;
  const checkpointerOf = (db: SqliteDB) => (db as unknown as { checkpointer: SqliteCheckpointer | null }).checkpointer;
  /** The checkpoint thread, once started. */
  const threadOf = (db: SqliteDB) => (checkpointerOf(db) as unknown as { worker: Worker | null } | null)?.worker ?? null;
  const close = (db: SqliteDB) => new Promise<void>((resolve, reject) => db.close((err) => (err ? reject(err) : resolve())));

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-checkpoints-'));
    file = path.join(dir, 'tandem.db');
    versions.clear();
  });
  afterEach(async function () {
    await Promise.all(opened.splice(0).map(close));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('inline (SQLite default): the committing connection copies the WAL into the file', function () {
    const db = open({ checkpoints: 'inline' });
    const before = fileBytes();
    commitMany(db, COMMITS_PAST_A_CHECKPOINT);
    assert.ok(fileBytes() > before, `the file grew from ${before} bytes (an inline checkpoint ran)`);
    assert.equal(checkpointerOf(db), null, 'no thread');
    assert.deepEqual(db.walCheckpoints, { mode: 'inline' });
  });

  it('background: once the thread runs, the commits never checkpoint', async function () {
    // Triggers far beyond the test: nothing checkpoints unless the commits themselves do.
    const db = open({ checkpointTriggers: NEVER });
    const before = fileBytes();
    commitMany(db, COMMITS_PAST_A_CHECKPOINT);
    assert.ok(threadOf(db), 'the thread started');
    assert.equal(fileBytes(), before, 'no commit checkpointed');
    assert.ok(fs.statSync(`${file}-wal`).size > 1000 * 4096, 'the WAL is past the 1,000 pages of an inline checkpoint');
    assert.deepEqual(db.walCheckpoints, { mode: 'background' });
  });

  const triggered: Array<[string, CheckpointTriggers]> = [
    ['every so many commits', { everyCommits: 300, intervalMs: NEVER.intervalMs }],
    ['on its interval, commits or not', { everyCommits: NEVER.everyCommits, intervalMs: 20 }],
  ];
  for (const [when, checkpointTriggers] of triggered) {
    it(`background: the thread checkpoints ${when}`, async function () {
      const db = open({ checkpointTriggers });
      const before = fileBytes();
      commitMany(db, COMMITS_PAST_A_CHECKPOINT);
      await waitFor(() => fileBytes() > before, { timeoutMs: 10_000, what: () => `the thread to checkpoint (file ${fileBytes()} bytes)` });
      assert.deepEqual(db.walCheckpoints, { mode: 'background' });
    });
  }

  it("background: a TRUNCATE never holds the store's commits back while a reader keeps the WAL (a backup running)", async function () {
    // The store's commits wait at most 100 ms for the write lock. A TRUNCATE that took it and
    // then waited, holding it, for the reader to leave (up to its busy timeout) made them fail.
    const db = open({ checkpointTriggers: { everyCommits: NEVER.everyCommits, intervalMs: 20 }, busyTimeoutMs: 100 });
    const walBytes = () => fs.statSync(`${file}-wal`).size;
    // A read transaction on a connection of its own, from before the commits below, as
    // `tandem backup`'s VACUUM INTO: nothing after its snapshot can be copied back, so the WAL grows.
    const reader = new Database(file);
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM ops').get();
    try {
      // Past the frames (a 4 KiB page and a 24-byte header each) at which the thread TRUNCATEs.
      while (walBytes() <= TRUNCATE_AFTER_FRAMES * (4096 + 24)) commitMany(db, 100);
      assert.ok(threadOf(db), 'the thread started');
      // Half a second of commits, one a turn, while the thread tries every 20 ms (and retries in between).
      const until = Date.now() + 500;
      while (Date.now() < until) {
        commitMany(db, 1);
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      reader.exec('COMMIT');
      reader.close();
    }
    // With the reader gone, the thread empties the WAL.
    await waitFor(() => walBytes() === 0, { timeoutMs: 10_000, what: () => `the thread to truncate the WAL (${walBytes()} bytes)` });
    assert.deepEqual(db.walCheckpoints, { mode: 'background' });
  });

  it('a thread that dies hands checkpoints back to the store, which says so', async function () {
    const db = open({ checkpointTriggers: NEVER });
    commitMany(db, 150);
    const thread = threadOf(db);
    assert.ok(thread, 'the thread started');
    await thread.terminate();
    await waitFor(() => db.walCheckpoints.mode === 'inline', { what: 'the store to take checkpoints back' });
    assert.match(db.walCheckpoints.failure ?? '', /checkpoint thread exited/);
    const before = fileBytes();
    commitMany(db, COMMITS_PAST_A_CHECKPOINT);
    assert.ok(fileBytes() > before, 'the commits checkpointed inline again');
  });

  it('close() answers once the thread has ended, its connection closed', async function () {
    const db = open({ checkpointTriggers: { everyCommits: 50, intervalMs: 20 } });
    commitMany(db, 300);
    const thread = threadOf(db);
    assert.ok(thread, 'the thread started');
    let ended = false;
    thread.once('exit', () => {
      ended = true;
    });
    await close(db);
    assert.equal(ended, true, 'the thread ended before close() answered');
    assert.deepEqual(db.walCheckpoints, { mode: 'background' }, 'a stop is not a failure');
    opened.splice(opened.indexOf(db), 1);
  });
});
