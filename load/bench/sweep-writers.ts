/**
 * W6's writers: each keeps one op in flight on its own document (closed loop), inserting one
 * character at a random offset of the document's text — `['text', {es: [offset, 'x']}]`.
 * Submit→ack latencies go into an HDR histogram (µs) that the caller resets when the
 * measured window starts.
 */
import { performance } from 'node:perf_hooks';
import { ops } from '../../ot-types/index.js';
import { errorCode, type LoadDocHandle } from '../adapter-types.js';
import { summarize } from '../aggregate.js';
import { newHistogram } from '../recorder.js';
import type { LatencySummary } from '../result.js';
import { createRng, hashSeed, type Rng } from '../rng.js';

/** Pause after a refused or failed submit, so a persistent failure does not spin. */
const AFTER_ERROR_MS = 50;

export interface WriterWindow {
  acked: number;
  ack: LatencySummary;
  /** Submit errors by code since the writers started. */
  errors: Record<string, number>;
}

export class ClosedLoopWriters {
  private running = false;
  private loops: Array<Promise<void>> = [];
  private readonly ack = newHistogram();
  private acked = 0;
  private readonly errors = new Map<string, number>();
  private readonly rngs: Rng[];

  constructor(
    private readonly docs: readonly LoadDocHandle[],
    seed: number,
  ) {
    this.rngs = docs.map((_, i) => createRng(hashSeed(seed, 'w6-writer', i)));
  }

  /** Starts the writers of the documents at `indexes` (default: all). */
  start(indexes: readonly number[] = this.docs.map((_, i) => i)): void {
    if (this.running) throw new Error('W6 writers already running');
    this.running = true;
    this.loops = indexes.map((i) => this.loop(this.docs[i]!, this.rngs[i]!));
  }

  /** Starts a fresh measured window: latencies and acks from now on. */
  resetWindow(): void {
    this.ack.reset();
    this.acked = 0;
  }

  window(): WriterWindow {
    return { acked: this.acked, ack: summarize(this.ack), errors: Object.fromEntries(this.errors) };
  }

  /** Lets each writer's op in flight finish, then stops; throws if an ack never comes. */
  async stop(timeoutMs = 60_000): Promise<void> {
    this.running = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`W6: a writer's op was not acknowledged within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.all(this.loops), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async loop(doc: LoadDocHandle, rng: Rng): Promise<void> {
    while (this.running) {
      const text = (doc.data as { text?: unknown } | undefined)?.text;
      // ASCII text: its length in UTF-16 units is its length in code points.
      const length = typeof text === 'string' ? text.length : 0;
      const op = ops.textInsert(['text'], rng.int(length + 1), 'x');
      const start = performance.now();
      try {
        await doc.submit(op);
        this.ack.recordValue(Math.max(1, Math.round((performance.now() - start) * 1000)));
        this.acked++;
      } catch (err) {
        const code = errorCode(err);
        this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, AFTER_ERROR_MS));
      }
    }
  }
}
