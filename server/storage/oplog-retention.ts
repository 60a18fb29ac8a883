/**
 * Op-log retention (OPLOG_RETENTION): the op log stops growing forever, and nothing a user
 * can still ask for is lost.
 *
 * What may go: for each document, the ops below its cut, where the cut is the newest
 * milestone snapshot that is (a) at least `versions` versions behind the document and (b)
 * older than `age` (its snapshot's mtime). Every version from the cut on stays fetchable
 * (that milestone plus the ops after it), so does the snapshot at any time after the cut's
 * mtime; an op is never removed before a milestone covers it. Older versions and times are
 * answered with TANDEM_MISSING_OPS.
 *
 * Compaction runs in the background in small batches (each its own short write), yielding
 * between them, so commits are never held for long; several processes on one store may
 * compact at once (a batch deletes what is below the cut, whoever runs it).
 */
import type { Logger } from '../ops/logger.js';

export interface OplogRetention {
  /** Keep at least this many of each document's latest versions fetchable; null: no version bound. */
  versions: number | null;
  /** Keep at least the versions younger than this, ms; null: no age bound. */
  ageMs: number | null;
}

/** A store that can remove ops below the cut (SQLite, PostgreSQL). */
export interface CompactableStore {
  /**
   * Removes at most `limit` ops below their document's cut, recording for each source the
   * highest seq removed (in the same write); resolves with how many it removed.
   */
  compactOps(retention: OplogRetention, nowMs: number, limit: number): Promise<number>;
  /** The highest seq of `src` among the document's removed ops, or null: a resend at or below it was committed. */
  prunedSeq(collection: string, id: string, src: string): Promise<number | null>;
}

const UNITS_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `versions=1000`, `age=30d`, or both (`versions=1000,age=7d`: an op goes only when both
 * allow it). Throws a message naming what is wrong; empty means "keep everything" (null).
 */
export function parseOplogRetention(text: string | undefined): OplogRetention | null {
  if (text === undefined || text.trim() === '') return null;
  const retention: OplogRetention = { versions: null, ageMs: null };
  for (const part of text.split(',')) {
    const [key, value = ''] = part.split('=').map((s) => s.trim());
    if (key === 'versions' && /^\d+$/.test(value) && Number(value) >= 1) retention.versions = Number(value);
    else if (key === 'age' && /^\d+[smhd]$/.test(value) && Number.parseInt(value, 10) >= 1) {
      retention.ageMs = Number.parseInt(value, 10) * UNITS_MS[value.slice(-1)]!;
    } else {
      throw new Error(`"${part.trim()}": expected versions=<n ≥ 1> and/or age=<n><s|m|h|d>, comma-separated`);
    }
  }
  return retention;
}

/** Ops one batch removes at most: one short write transaction. */
export const COMPACT_BATCH = 1000;

export interface CompactionStats {
  runs: number;
  removed: number;
  failures: number;
}

/** Runs compaction every `intervalMs` (and on demand) until closed. */
export class OplogCompactor {
  readonly stats: CompactionStats = { runs: 0, removed: 0, failures: 0 };
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private closed = false;

  constructor(
    private readonly store: CompactableStore,
    private readonly retention: OplogRetention,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.runOnce().finally(() => this.schedule());
    }, this.intervalMs);
    // Compaction never keeps a process alive that is otherwise done.
    this.timer.unref();
  }

  /** One pass: batches until one removes fewer than COMPACT_BATCH. Concurrent calls share the pass. */
  runOnce(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    let removed = 0;
    const started = performance.now();
    try {
      for (;;) {
        if (this.closed) break;
        const n = await this.store.compactOps(this.retention, this.now(), COMPACT_BATCH);
        removed += n;
        if (n < COMPACT_BATCH) break;
        // Let commits waiting behind this batch run before the next one.
        await new Promise((resolve) => setImmediate(resolve));
      }
      this.stats.runs++;
      this.stats.removed += removed;
      if (removed > 0) this.logger.info({ removed, ms: Math.round(performance.now() - started) }, 'op log compacted');
    } catch (err) {
      this.stats.failures++;
      this.logger.warn({ err: (err as Error).message, removed }, 'op log compaction failed; retried at the next interval');
    }
    return removed;
  }

  /** Stops the timer and waits for a pass in progress (it stops after its current batch). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
