/**
 * WAL checkpoints off the event loop.
 *
 * SQLite copies the WAL back into the database file (a checkpoint) inside the COMMIT that
 * takes the WAL past `wal_autocheckpoint` pages, with two fsyncs. libsql runs that COMMIT on
 * the event loop, so every client of the process waited for it: measured on this 2-core VM
 * (libsql, WAL, synchronous=NORMAL, a 117-byte op row per commit) a checkpoint every ~316
 * commits, each stalling that commit 7–10 ms, against 35 µs for the others.
 *
 * So the store's own connection stops checkpointing (`wal_autocheckpoint = 0`) and a worker
 * thread, on a connection of its own, runs `PRAGMA wal_checkpoint(PASSIVE)` (when:
 * CheckpointTriggers). A passive checkpoint takes no lock a writer needs: commits go on
 * appending to the WAL meanwhile, and SQLite restarts the WAL from its start once a checkpoint has copied
 * all of it (TRUNCATE_AFTER_FRAMES bounds it when that never happens). Other processes on
 * the file checkpoint too (SQLite lets one run at a time; the others find it busy and try on
 * their next tick). Durability does not change: a COMMITted transaction is in the WAL
 * before and after a checkpoint.
 *
 * If the thread fails, the connection checkpoints inline again (SQLite's default of 1000
 * pages), so the WAL never grows without bound.
 *
 * Measured (BENCHMARKS.md, W3: 200 clients at 1 op/s): ack p99 9.7 ms against 10.5 ms
 * inline over four rounds each, the ranges overlapping; closed-loop throughput within this
 * machine's drift.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Connection } from './sqlite-connection.js';

/** SQLite's own default for `wal_autocheckpoint`, restored when the thread fails. */
const INLINE_CHECKPOINT_PAGES = 1000;

/**
 * The thread starts at this many commits by one store: below ~300 WAL pages SQLite would not
 * have checkpointed yet (it does at 1000), and a store that commits less (a test, a
 * command-line tool) never pays for a thread.
 */
const THREAD_AFTER_COMMITS = 100;

/**
 * When the thread checkpoints: every `everyCommits` commits of the store (about SQLite's own
 * cadence of 1,000 WAL pages at 2–3 pages a commit), and every `intervalMs` whatever the
 * count, for pages no commit counted (snapshot rows written later, a quiet store). A timer of
 * 200 ms alone cost ~100 µs of CPU per commit at 200 commits/s: each checkpoint pays two
 * fsyncs however few pages it copies.
 */
export interface CheckpointTriggers {
  everyCommits: number;
  intervalMs: number;
}

export const DEFAULT_CHECKPOINT_TRIGGERS: CheckpointTriggers = { everyCommits: 300, intervalMs: 1000 };

/**
 * SQLite restarts the WAL from its start only when a write begins with all of it copied back;
 * under writes that never pause, a checkpoint in a thread rarely ends in such a gap, and the
 * WAL grows (measured: 52 MB within seconds of a closed-loop load). Past this many frames
 * (~16 MB) the thread checkpoints with TRUNCATE, which holds new writes back for the few
 * frames left after the passive pass and empties the file.
 */
export const TRUNCATE_AFTER_FRAMES = 4096;

/**
 * TRUNCATE never waits for a lock (no busy timeout): it takes the write lock only while it is
 * free, between two of the writers' transactions, and gives up at once when a reader still
 * uses the WAL. With a busy timeout it waited for the lock and then, holding it, for the
 * readers: every commit of the server waited with it, up to the whole timeout (1 s) whenever
 * a long read was open, such as `tandem backup`'s. It is retried this often, this many times,
 * then left to the next checkpoint.
 */
const TRUNCATE_RETRY_MS = 2;
const TRUNCATE_RETRIES = 100;

/** What the thread runs (CommonJS, evaluated: the server ships as one bundle, with no worker file beside it). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.libsql);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 0');
let retry = null;
let retries = 0;
function checkpoint() {
  clearTimeout(retry);
  retry = null;
  try {
    const [passive] = db.pragma('wal_checkpoint(PASSIVE)');
    if (!passive || passive.log <= workerData.truncateFrames) return;
    const [truncated] = db.pragma('wal_checkpoint(TRUNCATE)');
    if (!truncated || !truncated.busy) retries = 0;
    else if (++retries <= workerData.truncateRetries) retry = setTimeout(checkpoint, workerData.truncateRetryMs);
    else retries = 0;
  } catch (err) {
    // Busy is not a failure: another process checkpoints, or holds the lock briefly.
    if (err && err.code === 'SQLITE_BUSY') return;
    clearInterval(timer);
    throw err;
  }
}
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'checkpoint') return checkpoint();
  clearInterval(timer);
  clearTimeout(retry);
  db.close();
  parentPort.close();
});
`;

/** Where the thread loads libsql from: the same native module, so SQLite's per-file lock bookkeeping is shared. */
const libsqlPath = createRequire(import.meta.url).resolve('libsql');

export type CheckpointMode = 'background' | 'inline';

/** The file's checkpoints, for /metrics: in a thread, or inline after the thread failed (why). */
export interface CheckpointState {
  mode: CheckpointMode;
  failure?: string;
}

/**
 * The store's checkpoints in background mode: inline (SQLite's own) until its
 * THREAD_AFTER_COMMITS-th commit, then in the thread. One countdown serves both: to the
 * thread's start, then to each commit-count checkpoint.
 */
export class SqliteCheckpointer {
  private worker: Worker | null = null;
  private stopping = false;
  private failure: Error | null = null;
  private exited: Promise<void> = Promise.resolve();
  private commitsUntilNext = THREAD_AFTER_COMMITS;

  /** `conn` is the store's connection: it stops checkpointing once the thread runs. */
  constructor(
    private readonly conn: Connection,
    private readonly path: string,
    private readonly triggers: CheckpointTriggers = DEFAULT_CHECKPOINT_TRIGGERS,
  ) {}

  /** Counts one commit of the store: starts the thread, or has it checkpoint, when the count is due. */
  committed(): void {
    if (--this.commitsUntilNext > 0 || this.stopping || this.failure) return;
    this.commitsUntilNext = this.triggers.everyCommits;
    if (this.worker) this.worker.postMessage('checkpoint');
    else this.start();
  }

  get state(): CheckpointState {
    return this.failure ? { mode: 'inline', failure: this.failure.message } : { mode: 'background' };
  }

  /** Ends the thread (its connection closed cleanly); resolves once it has exited. */
  stop(): Promise<void> {
    if (!this.stopping && this.worker) {
      // Held until it has closed its connection: a caller awaiting close() is not left behind by an emptied event loop.
      this.worker.ref();
      this.worker.postMessage('stop');
    }
    this.stopping = true;
    return this.exited;
  }

  private start(): void {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        libsql: libsqlPath,
        path: this.path,
        intervalMs: this.triggers.intervalMs,
        truncateFrames: TRUNCATE_AFTER_FRAMES,
        truncateRetryMs: TRUNCATE_RETRY_MS,
        truncateRetries: TRUNCATE_RETRIES,
      },
    });
    // Never what keeps a process alive: close() ends it, and an exiting process takes it along.
    worker.unref();
    worker.on('error', (err) => this.fallBack(err));
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        if (!this.stopping) this.fallBack(new Error(`checkpoint thread exited (code ${code})`));
        resolve();
      });
    });
    this.worker = worker;
    this.conn.pragma('wal_autocheckpoint = 0');
  }

  private fallBack(err: Error): void {
    if (this.stopping || this.failure) return;
    this.failure = err;
    if (this.conn.open) this.conn.pragma(`wal_autocheckpoint = ${INLINE_CHECKPOINT_PAGES}`);
  }
}
