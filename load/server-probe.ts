/**
 * Server-side figures during a run: commits, commit retries, rejections and memory from each
 * instance's GET /metrics (`memory.{rss,heapUsed}` when the server reports them). For
 * loopback targets on Linux the probe also finds the process listening on the port through
 * /proc and reads its CPU time (and its RSS when /metrics has none).
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { isLoopbackUrl } from './options.js';

export interface ServerSample {
  commits: number | null;
  commitRetries: number | null;
  rejected: number | null;
  rssBytes: number | null;
  heapUsedBytes: number | null;
  /** CPU time the server process(es) used so far, µs (when known). */
  cpuMicros?: number | null;
  /** The server's event-loop delay p99 since its previous sample, ms (when it reports it). */
  loopDelayP99Ms?: number | null;
  /** When the server took the sample (performance.timeOrigin-based ms), if it says so; a
   * busy server answers late, and rates are then computed on its own clock. */
  atMs?: number;
}

export interface ServerProbe {
  /** Shown in the report: where the figures come from. */
  readonly source: string;
  sample(): Promise<ServerSample>;
}

function httpOrigin(url: string): string {
  const u = new URL(url);
  const protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  return `${protocol}//${u.host}`;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function sum(values: Array<number | null>): number | null {
  return values.some((v) => v === null) ? null : values.reduce<number>((a, b) => a + (b ?? 0), 0);
}

/** Inode of the socket listening on `port` (IPv4 or IPv6), from /proc/net/tcp*. */
function listeningInode(port: number): string | null {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && cols[1]!.endsWith(`:${hexPort}`) && cols[3] === '0A') return cols[9]!;
    }
  }
  return null;
}

/** Process holding the socket with that inode, by scanning /proc/<pid>/fd. */
function pidOfInode(inode: string): number | null {
  const target = `socket:[${inode}]`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${entry}/fd/${fd}`) === target) return Number(entry);
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return null;
}

function rssOf(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Clock ticks per second for /proc/<pid>/stat times; 100 on every Linux Node runs on. */
const CLK_TCK = 100;

/** User + system CPU time of a process, µs, from /proc/<pid>/stat (10 ms resolution). */
function cpuOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6;
  } catch {
    return null;
  }
}

/**
 * Polls `<origin>/metrics.json` of every distinct server URL; adds /proc RSS for loopback ones.
 * A server with authentication shows /metrics to any valid token: `getToken` gives one.
 */
export function httpMetricsProbe(urls: readonly string[], getToken?: () => Promise<string>): ServerProbe {
  const origins = [...new Set(urls.map(httpOrigin))];
  let token: Promise<string> | null = null;
  const headers = async (): Promise<Record<string, string>> =>
    getToken ? { authorization: `Bearer ${await (token ??= getToken())}` } : {};
  const pids = new Map<string, number | null>();
  const pidFor = (origin: string): number | null => {
    if (!pids.has(origin)) {
      let pid: number | null = null;
      if (process.platform === 'linux' && isLoopbackUrl(origin)) {
        const u = new URL(origin);
        const inode = listeningInode(Number(u.port || (u.protocol === 'https:' ? 443 : 80)));
        pid = inode ? pidOfInode(inode) : null;
      }
      pids.set(origin, pid);
    }
    return pids.get(origin) ?? null;
  };
  const one = async (origin: string): Promise<ServerSample> => {
    let body: Record<string, unknown> = {};
    try {
      // A saturated server answers late; the caller does not wait for this to close a slot.
      const res = await fetch(`${origin}/metrics.json`, { headers: await headers(), signal: AbortSignal.timeout(10_000) });
      if (res.ok) body = (await res.json()) as Record<string, unknown>;
    } catch {
      // no /metrics (a stock ShareDB server) or not answering: figures stay null
    }
    const memory = (body.memory ?? {}) as Record<string, unknown>;
    const pid = pidFor(origin);
    return {
      commits: num(body.commits),
      commitRetries: num(body.commitRetries),
      rejected: num(body.rejected),
      rssBytes: num(memory.rss) ?? (pid === null ? null : rssOf(pid)),
      heapUsedBytes: num(memory.heapUsed),
      cpuMicros: pid === null ? null : cpuOf(pid),
    };
  };
  return {
    source: `GET /metrics on ${origins.length} instance(s)` + (process.platform === 'linux' ? '; RSS from /proc for loopback' : ''),
    sample: async () => {
      const samples = await Promise.all(origins.map(one));
      return {
        commits: sum(samples.map((s) => s.commits)),
        commitRetries: sum(samples.map((s) => s.commitRetries)),
        rejected: sum(samples.map((s) => s.rejected)),
        rssBytes: sum(samples.map((s) => s.rssBytes)),
        heapUsedBytes: sum(samples.map((s) => s.heapUsedBytes)),
        cpuMicros: sum(samples.map((s) => s.cpuMicros ?? null)),
      };
    },
  };
}
