/**
 * Merges workers' interval reports into the run's totals (latencies and throughput over the
 * measured window only; errors and disconnects over the whole run), and turns HDR histograms
 * into summaries and curves. The per-second view is load/timeline.ts.
 */
import * as hdr from 'hdr-histogram-js';
import { BUCKET_COUNT, type IntervalReport, type MemorySample } from './ipc.js';
import { bucketFloorUs, newHistogram } from './recorder.js';
import type { LatencySummary } from './result.js';

export function summarize(h: hdr.Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  if (h.totalCount === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.totalCount,
    mean: ms(h.mean),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

/** Percentiles spaced evenly in log(1/(1-p)), the usual HDR plot, up to 99.999 then max. */
export function percentileCurve(h: hdr.Histogram): Array<[number, number]> {
  if (h.totalCount === 0) return [];
  const points: Array<[number, number]> = [];
  for (let k = 0; k <= 20; k++) {
    const p = 100 * (1 - 10 ** (-k / 4));
    points.push([Math.round(p * 1000) / 1000, h.getValueAtPercentile(p) / 1000]);
  }
  points.push([100, h.maxValue / 1000]);
  return points;
}

function addEncoded(into: hdr.Histogram, encoded: string): void {
  if (encoded === '') return;
  into.add(hdr.decodeFromCompressedBase64(encoded));
}

function addBuckets(into: number[], from: number[]): void {
  for (let i = 0; i < BUCKET_COUNT; i++) into[i]! += from[i] ?? 0;
}

export class Aggregator {
  readonly ack = newHistogram();
  readonly seen = newHistogram();
  readonly presence = newHistogram();
  readonly ackBuckets = new Array<number>(BUCKET_COUNT).fill(0);
  readonly seenBuckets = new Array<number>(BUCKET_COUNT).fill(0);
  readonly errors: Record<string, number> = {};
  measured = { acked: 0, submitted: 0, presenceSeen: 0, cpuMicros: 0 };
  failedOps = 0;
  reconnects = 0;
  chaosDisconnects = 0;
  delayedByDisconnect = 0;
  worstLoopDelayP99Ms = 0;
  readonly workerMemory = new Map<number, MemorySample>();

  /** Folds in counters every report carries, whatever its phase. */
  private absorb(worker: number, r: IntervalReport): void {
    for (const [code, n] of Object.entries(r.errors)) this.errors[code] = (this.errors[code] ?? 0) + n;
    this.failedOps += r.failed;
    this.reconnects += r.reconnects;
    this.chaosDisconnects += r.chaosDisconnects;
    this.delayedByDisconnect += r.delayedByDisconnect;
    this.workerMemory.set(worker, r.memory);
    if (r.phase === 'measure') {
      this.worstLoopDelayP99Ms = Math.max(this.worstLoopDelayP99Ms, r.loopDelayP99Ms);
      this.measured.acked += r.acked;
      this.measured.submitted += r.submitted;
      this.measured.presenceSeen += r.presenceSeen;
      this.measured.cpuMicros += r.cpuMicros;
      addEncoded(this.ack, r.ackHist);
      addEncoded(this.seen, r.seenHist);
      addEncoded(this.presence, r.presenceHist);
      addBuckets(this.ackBuckets, r.ackBuckets);
      addBuckets(this.seenBuckets, r.seenBuckets);
    }
  }

  /** Every report, in any phase and whenever it arrives. */
  add(worker: number, r: IntervalReport): void {
    this.absorb(worker, r);
  }

  clientMemory(): MemorySample {
    let rss = 0;
    let heapUsed = 0;
    for (const m of this.workerMemory.values()) {
      rss += m.rss;
      heapUsed += m.heapUsed;
    }
    return { rss, heapUsed };
  }

  histogram(): { floorsMs: number[]; ack: number[]; seen: number[] } {
    // Trim empty buckets at both ends so the chart spans only what was measured.
    const used = (i: number) => (this.ackBuckets[i] ?? 0) + (this.seenBuckets[i] ?? 0) > 0;
    let lo = 0;
    let hi = BUCKET_COUNT - 1;
    while (lo < hi && !used(lo)) lo++;
    while (hi > lo && !used(hi)) hi--;
    const floorsMs: number[] = [];
    for (let i = lo; i <= hi; i++) floorsMs.push(Math.round(bucketFloorUs(i)) / 1000);
    return { floorsMs, ack: this.ackBuckets.slice(lo, hi + 1), seen: this.seenBuckets.slice(lo, hi + 1) };
  }
}
