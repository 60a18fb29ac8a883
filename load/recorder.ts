/**
 * A worker's measurements between two flushes: counters, error codes, HDR latency
 * histograms (hdr-histogram-js, µs, 3 significant digits) and coarse log buckets for the
 * report's histogram chart. `take()` returns the interval and starts a new one.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { BUCKET_COUNT, BUCKETS_PER_OCTAVE, type IntervalReport, type MemorySample, type Phase } from './ipc.js';

export function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

export function bucketOf(us: number): number {
  const i = Math.floor(BUCKETS_PER_OCTAVE * Math.log2(Math.max(1, us)));
  return Math.min(BUCKET_COUNT - 1, Math.max(0, i));
}

/** Lower bound (µs) of bucket i. */
export function bucketFloorUs(i: number): number {
  return 2 ** (i / BUCKETS_PER_OCTAVE);
}

function encode(h: hdr.Histogram): string {
  // Level 1: sent every second and decoded at once; size hardly matters, CPU does.
  return h.totalCount === 0 ? '' : hdr.encodeIntoCompressedBase64(h, 1);
}

export class Recorder {
  submitted = 0;
  acked = 0;
  failed = 0;
  presenceSent = 0;
  presenceSeen = 0;
  delayedByDisconnect = 0;
  reconnects = 0;
  chaosDisconnects = 0;
  private errors = new Map<string, number>();
  private readonly ack = newHistogram();
  private readonly seen = newHistogram();
  private readonly presence = newHistogram();
  private ackBuckets = new Array<number>(BUCKET_COUNT).fill(0);
  private seenBuckets = new Array<number>(BUCKET_COUNT).fill(0);
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private cpu = process.cpuUsage();

  constructor() {
    this.loop.enable();
  }

  recordAck(ms: number): void {
    const us = Math.max(1, Math.round(ms * 1000));
    this.acked++;
    this.ack.recordValue(us);
    this.ackBuckets[bucketOf(us)]!++;
  }

  recordSeen(ms: number): void {
    const us = Math.max(1, Math.round(ms * 1000));
    this.seen.recordValue(us);
    this.seenBuckets[bucketOf(us)]!++;
  }

  recordPresence(ms: number): void {
    this.presenceSeen++;
    this.presence.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  error(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /** Returns everything since the last take() and resets. */
  take(slot: number, phase: Phase, state: { online: number; pending: number }): IntervalReport {
    const mem = process.memoryUsage();
    const memory: MemorySample = { rss: mem.rss, heapUsed: mem.heapUsed };
    const cpu = process.cpuUsage(this.cpu);
    this.cpu = process.cpuUsage();
    const report: IntervalReport = {
      slot,
      phase,
      submitted: this.submitted,
      acked: this.acked,
      failed: this.failed,
      presenceSent: this.presenceSent,
      presenceSeen: this.presenceSeen,
      delayedByDisconnect: this.delayedByDisconnect,
      reconnects: this.reconnects,
      chaosDisconnects: this.chaosDisconnects,
      errors: Object.fromEntries(this.errors),
      ackHist: encode(this.ack),
      seenHist: encode(this.seen),
      presenceHist: encode(this.presence),
      ackBuckets: this.ackBuckets,
      seenBuckets: this.seenBuckets,
      online: state.online,
      pending: state.pending,
      memory,
      cpuMicros: cpu.user + cpu.system,
      loopDelayP99Ms: this.loop.count > 0 ? this.loop.percentile(99) / 1e6 : 0,
      loopDelayMaxMs: this.loop.count > 0 ? this.loop.max / 1e6 : 0,
    };
    this.submitted = this.acked = this.failed = this.presenceSent = this.presenceSeen = 0;
    this.delayedByDisconnect = this.reconnects = this.chaosDisconnects = 0;
    this.errors = new Map();
    this.ack.reset();
    this.seen.reset();
    this.presence.reset();
    this.ackBuckets = new Array<number>(BUCKET_COUNT).fill(0);
    this.seenBuckets = new Array<number>(BUCKET_COUNT).fill(0);
    this.loop.reset();
    return report;
  }
}
