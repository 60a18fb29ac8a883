/**
 * Live progress on stderr: a cli-progress bar on a terminal, or one plain line every few
 * seconds otherwise (CI logs), with current ops/s and latency p99.
 */
import cliProgress from 'cli-progress';
import type { TimelinePoint } from './result.js';

export interface Progress {
  phase(name: string): void;
  tick(point: TimelinePoint, elapsedMs: number, totalMs: number): void;
  stop(): void;
}

const fmtMs = (v: number | null) => (v === null ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(0));

function payload(point: TimelinePoint | null, phase: string) {
  return {
    phase: phase.padEnd(7),
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
    let lastPrinted = -Infinity;
    return {
      phase: (name) => {
        phase = name;
        stream.write(`[load] phase ${name}\n`);
      },
      tick: (point, elapsedMs, totalMs) => {
        if (elapsedMs - lastPrinted < 5_000 && elapsedMs < totalMs) return;
        lastPrinted = elapsedMs;
        const p = payload(point, phase);
        stream.write(
          `[load] ${phase} ${(elapsedMs / 1000).toFixed(0)}/${(totalMs / 1000).toFixed(0)}s ` +
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
        '{phase} |{bar}| {value}/{total}s | {ops} ops/s (server {commits}) | ack p99 {p99} ms | seen p99 {seen} ms | online {online} | err {errors} | reconn {reconnects}',
      hideCursor: true,
      barsize: 24,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let last: TimelinePoint | null = null;
  return {
    phase: (name) => {
      phase = name;
      if (started) bar.update(payload(last, phase));
      else stream.write(`[load] ${name}…\n`);
    },
    tick: (point, elapsedMs, totalMs) => {
      last = point;
      if (!started) {
        bar.start(Math.round(totalMs / 1000), 0, payload(point, phase));
        started = true;
      }
      bar.update(Math.min(Math.round(elapsedMs / 1000), Math.round(totalMs / 1000)), payload(point, phase));
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
