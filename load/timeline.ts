/**
 * The run's timeline, one point per 1 s slot. Worker reports are filed under the slot they
 * were flushed for, whenever they arrive: a starved load generator answers late, and its
 * figures still land in the right second. Points are built at the end (and provisionally
 * for live progress from what has arrived).
 */
import * as hdr from 'hdr-histogram-js';
import type { IntervalReport, Phase } from './ipc.js';
import { newHistogram } from './recorder.js';
import type { TimelinePoint } from './result.js';

export interface ServerSlot {
  commitsPerSec: number | null;
  rssBytes: number | null;
  loopDelayP99Ms: number | null;
}

/** What a point needs from one worker's report (the rest is dropped to keep memory small). */
interface SlotSample {
  acked: number;
  submitted: number;
  presenceSeen: number;
  online: number;
  pending: number;
  errors: number;
  reconnects: number;
  loopDelayP99Ms: number;
  heapUsed: number;
  ackHist: string;
  seenHist: string;
}

interface SlotMeta {
  t: number;
  seconds: number;
  phase: Phase;
  server: ServerSlot;
}

/** A slot shorter than this (the one closed when the run stops) would plot as a spike. */
const MIN_SLOT_SECONDS = 0.25;

export class Timeline {
  private readonly samples = new Map<number, Map<number, SlotSample>>();
  private readonly meta = new Map<number, SlotMeta>();

  add(worker: number, r: IntervalReport): void {
    if (r.slot < 0) return;
    const slot = this.samples.get(r.slot) ?? new Map<number, SlotSample>();
    slot.set(worker, {
      acked: r.acked,
      submitted: r.submitted,
      presenceSeen: r.presenceSeen,
      online: r.online,
      pending: r.pending,
      errors: Object.values(r.errors).reduce((a, b) => a + b, 0),
      reconnects: r.reconnects,
      loopDelayP99Ms: r.loopDelayP99Ms,
      heapUsed: r.memory.heapUsed,
      ackHist: r.ackHist,
      seenHist: r.seenHist,
    });
    this.samples.set(r.slot, slot);
  }

  /** Records a closed slot; returns its point from the reports received so far. */
  close(slot: number, meta: SlotMeta): TimelinePoint | null {
    this.meta.set(slot, meta);
    return meta.seconds < MIN_SLOT_SECONDS ? null : this.point(slot, meta);
  }

  /** Reports received for a slot (to wait for them before a live point). */
  received(slot: number): number {
    return this.samples.get(slot)?.size ?? 0;
  }

  points(): TimelinePoint[] {
    return [...this.meta]
      .sort((a, b) => a[0] - b[0])
      .filter(([, m]) => m.seconds >= MIN_SLOT_SECONDS)
      .map(([slot, m]) => this.point(slot, m));
  }

  private point(slot: number, m: SlotMeta): TimelinePoint {
    const samples = [...(this.samples.get(slot)?.values() ?? [])];
    const sum = (k: keyof SlotSample) => samples.reduce((a, s) => a + (s[k] as number), 0);
    const ack = newHistogram();
    const seen = newHistogram();
    for (const s of samples) {
      if (s.ackHist) ack.add(hdr.decodeFromCompressedBase64(s.ackHist));
      if (s.seenHist) seen.add(hdr.decodeFromCompressedBase64(s.seenHist));
    }
    const pct = (h: hdr.Histogram, p: number) => (h.totalCount === 0 ? null : h.getValueAtPercentile(p) / 1000);
    return {
      t: Math.round(m.t * 10) / 10,
      phase: m.phase,
      workersReporting: samples.length,
      ackedPerSec: sum('acked') / m.seconds,
      submittedPerSec: sum('submitted') / m.seconds,
      serverCommitsPerSec: m.server.commitsPerSec,
      presencePerSec: sum('presenceSeen') / m.seconds,
      ackP50: pct(ack, 50),
      ackP99: pct(ack, 99),
      seenP50: pct(seen, 50),
      seenP99: pct(seen, 99),
      online: sum('online'),
      pending: sum('pending'),
      errors: sum('errors'),
      reconnects: sum('reconnects'),
      clientHeapBytes: sum('heapUsed'),
      serverRssBytes: m.server.rssBytes,
      ...(m.server.loopDelayP99Ms === null ? {} : { serverLoopDelayP99Ms: m.server.loopDelayP99Ms }),
      loopDelayP99Ms: samples.reduce((a, s) => Math.max(a, s.loopDelayP99Ms), 0),
    };
  }
}
