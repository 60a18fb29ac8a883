/**
 * Live progress on stderr: a cli-progress bar on a terminal, or one plain line every few
 * seconds otherwise (CI logs), with current ops/s and latency p99.
 *
 * The count is the current phase's (see RunHooks.onTick): the warm-up, then the measured
 * window, so a 15 s run counts to 15/15 s; setup phases have no length and show seconds spent.
 */
import cliProgress from 'cli-progress';
import type { TimelinePoint } from './result.js';

export interface Progress {
  phase(name: string): void;
  /** `elapsedMs` of `totalMs` in the current phase; `totalMs` 0: a phase of no fixed length. */
  tick(point: TimelinePoint, elapsedMs: number, totalMs: number): void;
  stop(): void;
}

/** How often the plain-line mode prints within a phase, in seconds. */
const LINE_EVERY_S = 5;

const fmtMs = (v: number | null) => (v === null ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(0));

/** "5/15s" in a timed phase, "5s" in an untimed one; whole seconds, never past the total. */
export function phaseClock(elapsedMs: number, totalMs: number): string {
  const elapsed = Math.round(Math.max(0, elapsedMs) / 1000);
  if (totalMs <= 0) return `${elapsed}s`;
  const total = Math.round(totalMs / 1000);
  return `${Math.min(elapsed, total)}/${total}s`;
}

function payload(point: TimelinePoint | null, phase: string, clock: string) {
  return {
    phase: phase.padEnd(9),
    clock: clock.padStart(7),
    ops: point ? point.ackedPerSec.toFixed(0).padStart(6) : '     -',
    commits: point?.serverCommitsPerSec != null ? point.serverCommitsPerSec.toFixed(0) : '-',
    p99: fmtMs(point?.ackP99 ?? null),
    seen: fmtMs(point?.seenP99 ?? null),
    online: point?.online ?? 0,
    errors: point?.errors ?? 0,
    reconnects: point?.reconnects ?? 0,
  };
}

export function createProgress(mode: 'auto' | 'bar' | 'lines' | 'none', stream: NodeJS.WriteStream = process.stderr): Progress {
  const resolved = mode === 'auto' ? (stream.isTTY ? 'bar' : 'lines') : mode;
  let phase = 'setup';
  if (resolved === 'none') return { phase: () => {}, tick: () => {}, stop: () => {} };
  if (resolved === 'lines') {
    // Whole seconds of the current phase last printed; a new phase starts over.
    let lastPrinted = 0;
    return {
      phase: (name) => {
        phase = name;
        lastPrinted = 0;
        stream.write(`[load] phase ${name}\n`);
      },
      tick: (point, elapsedMs, totalMs) => {
        const seconds = Math.round(elapsedMs / 1000);
        const end = totalMs > 0 && seconds >= Math.round(totalMs / 1000);
        if (seconds <= lastPrinted || (!end && seconds - lastPrinted < LINE_EVERY_S)) return;
        lastPrinted = seconds;
        const p = payload(point, phase, phaseClock(elapsedMs, totalMs));
        stream.write(
          `[load] ${phase} ${p.clock.trim()} ` +
            `ops/s ${p.ops.trim()} (server ${p.commits}) ack p99 ${p.p99} ms seen p99 ${p.seen} ms ` +
            `online ${p.online} errors ${p.errors} reconnects ${p.reconnects}\n`,
        );
      },
      stop: () => {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format:
        '{phase} |{bar}| {clock} | {ops} ops/s (server {commits}) | ack p99 {p99} ms | seen p99 {seen} ms | online {online} | err {errors} | reconn {reconnects}',
      hideCursor: true,
      barsize: 24,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let last: TimelinePoint | null = null;
  let clock = '';
  return {
    phase: (name) => {
      phase = name;
      if (started) bar.update(payload(last, phase, clock));
      else stream.write(`[load] ${name}…\n`);
    },
    tick: (point, elapsedMs, totalMs) => {
      last = point;
      clock = phaseClock(elapsedMs, totalMs);
      // The bar fills over a timed phase and stays empty in one of no fixed length.
      const total = Math.max(1, Math.round(totalMs / 1000));
      const value = totalMs > 0 ? Math.min(Math.round(elapsedMs / 1000), total) : 0;
      if (!started) {
        bar.start(total, value, payload(point, phase, clock));
        started = true;
        return;
      }
      if (bar.getTotal() !== total) bar.setTotal(total);
      bar.update(value, payload(point, phase, clock));
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
