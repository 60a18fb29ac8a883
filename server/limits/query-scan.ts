/**
 * Where the in-process stores (SQLite, memory) run queries: one at a time, a slice of at
 * most `sliceMs` per event-loop turn, so a scan of thousands of documents never holds up
 * the commits, acks and health checks of everyone else — between two slices the server
 * reads its sockets and finishes what they asked for.
 *
 * Fairness: each owner (a client connection) has its own queue and owners take turns, so a
 * client that keeps many queries (or query subscriptions) busy delays another client's query
 * by one of its queries at most, not by its whole backlog. One query runs at a time, so
 * memory holds one query's matches, not every waiting one's.
 *
 * Identical polls waiting at once (the same subscribed query on several connections, re-run
 * after the same op) are run once (`key`).
 *
 * A query whose own slices add up to more than `budgetMs` is stopped with
 * TANDEM_QUERY_TOO_LARGE: whatever makes a query expensive (size of the documents, a complex
 * filter, a sort), its cost stays bounded.
 */
import { QueryTooLargeError } from './query-errors.js';

/** One query's work, done a slice at a time. */
export interface ScanJob<T> {
  /** Works until `deadline` (performance.now()) or the end; returns true once `result()` is ready. Throws to fail. */
  step(deadline: number): boolean;
  result(): T;
}

export type ScanCallback<T> = (err: Error | null, result?: T) => void;

export interface ScannerOptions {
  /** Longest slice of one query per event-loop turn, ms. Default 5. */
  sliceMs?: number;
  /**
   * Pause after a slice, as a multiple of the slice's duration. Default 1: queries take at
   * most about half the event loop while other work waits, so a commit that needs several
   * turns (reads, the COMMIT, the ack) is not held up by a slice in each of them.
   */
  pauseRatio?: number;
  /** Most time one query may take in all, ms. Default 5000. */
  budgetMs?: number;
}

interface Entry {
  readonly owner: unknown;
  readonly key: string | null;
  readonly create: () => ScanJob<unknown>;
  readonly waiters: Array<ScanCallback<unknown>>;
  job: ScanJob<unknown> | null;
  spent: number;
}

const ANONYMOUS = Symbol('no owner');

export class QueryScanner {
  readonly sliceMs: number;
  readonly pauseRatio: number;
  readonly budgetMs: number;
  /** Waiting queries by owner; Map order is the turn order. */
  private readonly queues = new Map<unknown, Entry[]>();
  /** Waiting (not started) queries by key, for sharing. */
  private readonly waiting = new Map<string, Entry>();
  private current: Entry | null = null;
  private scheduled = false;

  constructor(options: ScannerOptions = {}) {
    this.sliceMs = options.sliceMs ?? 5;
    this.pauseRatio = options.pauseRatio ?? 1;
    this.budgetMs = options.budgetMs ?? 5000;
  }

  /** Queries waiting or running (for tests and metrics). */
  get pending(): number {
    let n = this.current ? 1 : 0;
    for (const queue of this.queues.values()) n += queue.length;
    return n;
  }

  /**
   * Queues a query. `create` runs when its turn comes (a throw fails it); with a `key`, a
   * query already waiting under the same key answers this caller too.
   */
  submit<T>(owner: unknown, key: string | null, create: () => ScanJob<T>, callback: ScanCallback<T>): void {
    const shared = key === null ? undefined : this.waiting.get(key);
    if (shared) {
      shared.waiters.push(callback as ScanCallback<unknown>);
      return;
    }
    const entry: Entry = { owner: owner ?? ANONYMOUS, key, create, waiters: [callback as ScanCallback<unknown>], job: null, spent: 0 };
    const queue = this.queues.get(entry.owner);
    if (queue) queue.push(entry);
    else this.queues.set(entry.owner, [entry]);
    if (key !== null) this.waiting.set(key, entry);
    // Idle: the first slice runs now, so a small query reads the store when it is asked,
    // exactly as an unsliced one would (ShareDB's conformance suite relies on that order).
    if (!this.current && !this.scheduled) this.slice();
    else this.schedule();
  }

  /**
   * The next slice, once the event loop has served I/O: after a pause proportional to the
   * last slice (a timer: turns without a slice run in between), or at least after the poll
   * phase (setImmediate).
   */
  private schedule(lastSliceMs = 0): void {
    if (this.scheduled || (!this.current && this.queues.size === 0)) return;
    this.scheduled = true;
    const pause = Math.floor(lastSliceMs * this.pauseRatio);
    if (pause >= 1) setTimeout(this.slice, pause);
    else setImmediate(this.slice);
  }

  /** The first owner's first query; that owner goes to the back of the line. */
  private next(): Entry | null {
    const first = this.queues.entries().next();
    if (first.done) return null;
    const [owner, queue] = first.value;
    const entry = queue.shift()!;
    this.queues.delete(owner);
    if (queue.length > 0) this.queues.set(owner, queue);
    if (entry.key !== null && this.waiting.get(entry.key) === entry) this.waiting.delete(entry.key);
    return entry;
  }

  private readonly slice = (): void => {
    this.scheduled = false;
    const entry = this.current ?? this.next();
    if (!entry) return;
    this.current = entry;
    const start = performance.now();
    let took = 0;
    try {
      entry.job ??= entry.create();
      const done = entry.job.step(start + this.sliceMs);
      took = performance.now() - start;
      entry.spent += took;
      if (done) this.finish(entry, null, entry.job.result());
      else if (entry.spent > this.budgetMs) {
        this.finish(
          entry,
          new QueryTooLargeError(`the query needs more than ${this.budgetMs} ms of work: narrow it or name its documents by _id`),
        );
      }
    } catch (err) {
      this.finish(entry, err instanceof Error ? err : new Error(String(err)));
      took = performance.now() - start;
    }
    this.schedule(took);
  };

  private finish(entry: Entry, err: Error | null, result?: unknown): void {
    this.current = null;
    // Callbacks run after this slice, never inside the scanner's own bookkeeping.
    for (const waiter of entry.waiters) process.nextTick(waiter, err, result);
  }
}
