/** IPC between the benchmark and a server host process (load/bench/server-host.ts). */

export type ServerKind = 'tandem' | 'stock';

export interface HostStats {
  /** Successful submits, failed ones, and ShareDB's commit retries (from 'submitRequestEnd'). */
  commits: number;
  rejected: number;
  commitRetries: number;
  rss: number;
  heapUsed: number;
  /** process.cpuUsage() user + system, µs since the host started. */
  cpuMicros: number;
  /** Event-loop delay p99 since the previous stats request, ms (how long a message waited). */
  loopDelayP99Ms: number;
  /** Wall clock of the sample, ms since the epoch with a fraction (performance.timeOrigin + now). */
  atMs: number;
}

export type ToHost = { type: 'stats' } | { type: 'gc-heap' } | { type: 'heap-snapshot'; path: string } | { type: 'close' };

export type FromHost =
  | { type: 'listening'; url: string; sharedbWsUrl: string }
  | { type: 'stats'; stats: HostStats }
  | { type: 'gc-heap'; heapUsed: number; rss: number }
  | { type: 'heap-snapshot'; path: string }
  | { type: 'closed' }
  | { type: 'fatal'; message: string };
