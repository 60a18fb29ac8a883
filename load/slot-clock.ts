/**
 * The run's clock: every second it asks each worker for the interval since the last flush
 * (all workers flush the same slot number, so their figures line up), samples the server
 * without waiting on it, and hands the slot to the timeline.
 */
import { performance } from 'node:perf_hooks';
import type { Aggregator } from './aggregate.js';
import type { Phase } from './ipc.js';
import type { TimelinePoint } from './result.js';
import type { ServerProbe, ServerSample } from './server-probe.js';
import type { Timeline } from './timeline.js';
import type { WorkerPool } from './worker-pool.js';

export const TICK_MS = 1_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function safeSample(probe: ServerProbe): Promise<ServerSample | null> {
  try {
    return await probe.sample();
  } catch {
    return null;
  }
}

/** Pulls one interval per slot from every worker and folds it into the timeline. */
export class SlotClock {
  private slot = 0;
  private slotStartedAt = performance.now();
  /** When the newest slot was closed (its flush was sent). */
  lastFlushAt = this.slotStartedAt;
  /** Newest server sample and when it was taken (performance.now()). */
  lastServer: ServerSample | null = null;
  lastServerAt = 0;
  /** The sample the previous slot's server rate was computed up to. */
  private rateFrom: { sample: ServerSample | null; at: number } = { sample: null, at: 0 };
  private sampling: Promise<void> | null = null;
  /** The phase the workers are in (set by runLoad); a slot is labelled with it when closed. */
  phase: Phase = 'connect';
  private ticker: ReturnType<typeof setInterval> | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: WorkerPool,
    aggregator: Aggregator,
    private readonly timeline: Timeline,
    private readonly probe: ServerProbe,
    private readonly t0: number,
    private readonly onPoint: (point: TimelinePoint) => void,
  ) {
    pool.on((worker, m) => {
      if (m.type !== 'interval') return;
      aggregator.add(worker, m.report);
      timeline.add(worker, m.report);
    });
  }

  /** Starts a server sample unless one is in flight (a saturated server answers late). */
  private refreshServer(): Promise<void> {
    this.sampling ??= (async () => {
      const sample = await safeSample(this.probe);
      if (sample) {
        this.lastServer = sample;
        this.lastServerAt = sample.atMs !== undefined ? sample.atMs - performance.timeOrigin : performance.now();
      }
      this.sampling = null;
    })();
    return this.sampling;
  }

  /** A fresh server sample (waits for one in flight, then takes another). */
  async sampleServerNow(): Promise<{ sample: ServerSample | null; at: number }> {
    await this.refreshServer();
    await this.refreshServer();
    return { sample: this.lastServer, at: this.lastServerAt };
  }

  /** Closes the current slot: flush all workers, sample the server, add a timeline point. */
  close(): Promise<void> {
    this.chain = this.chain.then(() => this.closeNow());
    return this.chain;
  }

  /** Closes a slot every TICK_MS in the background (setup phases). */
  startBackground(): void {
    this.ticker = setInterval(() => void this.close(), TICK_MS);
  }

  async stopBackground(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    await this.close();
  }

  private async closeNow(): Promise<void> {
    const current = this.slot++;
    const now = performance.now();
    const seconds = (now - this.slotStartedAt) / 1000;
    this.slotStartedAt = this.lastFlushAt = now;
    this.pool.broadcast({ type: 'flush', slot: current });
    void this.refreshServer();
    const phase = this.phase;
    // Replies normally arrive within milliseconds; a starved worker's may come later (they
    // are filed under this slot whenever they come; the live point shows what is here).
    const deadline = performance.now() + 800;
    while (this.timeline.received(current) < this.pool.size && performance.now() < deadline && !this.pool.failed) await sleep(5);
    let commitsPerSec: number | null = null;
    const from = this.rateFrom;
    if (this.lastServerAt > from.at && this.lastServer?.commits != null && from.sample?.commits != null) {
      commitsPerSec = (this.lastServer.commits - from.sample.commits) / ((this.lastServerAt - from.at) / 1000);
    }
    if (this.lastServerAt > from.at) this.rateFrom = { sample: this.lastServer, at: this.lastServerAt };
    const rssBytes = this.lastServer?.rssBytes ?? null;
    const fresh = commitsPerSec !== null;
    const loopDelayP99Ms = fresh ? (this.lastServer?.loopDelayP99Ms ?? null) : null;
    const point = this.timeline.close(current, {
      t: (now - this.t0) / 1000,
      seconds,
      phase,
      server: { commitsPerSec, rssBytes, loopDelayP99Ms },
    });
    if (point) this.onPoint(point);
  }
}
