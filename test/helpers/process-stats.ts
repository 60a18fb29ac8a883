/**
 * What the attack tests read about a server process while it is attacked: its resident
 * memory and CPU time (Linux /proc), and how long /healthz takes to answer.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';

/** Resident set size of a process, bytes. */
export function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** User + system CPU time a process has used, ms (clock ticks of 10 ms). */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state, field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** One GET /healthz; resolves with its latency, or Infinity when no 200 came within `timeoutMs` (in all). */
export function healthzMs(url: string, timeoutMs = 1000): Promise<number> {
  const started = performance.now();
  return new Promise((resolve) => {
    const finish = (ms: number) => {
      clearTimeout(deadline);
      resolve(ms);
    };
    const req = request(`${url}/healthz`, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => finish(res.statusCode === 200 ? performance.now() - started : Infinity));
      res.on('error', () => finish(Infinity));
    });
    const deadline = setTimeout(() => {
      req.destroy();
      finish(Infinity);
    }, timeoutMs);
    req.on('error', () => finish(Infinity));
    req.end();
  });
}
