/**
 * What an attack test watches while the attack runs: /healthz latency, the server
 * process's RSS and CPU time (from /proc), and a bystander committing ops.
 */
import { fileURLToPath } from 'node:url';
import type { Doc } from 'sharedb/lib/client/index.js';
import { spawnJsonLines } from '../helpers/json-lines-process.js';
import { cpuMsOf, healthzMs, rssOf } from '../helpers/process-stats.js';
import { waitFor } from '../helpers/wait.js';
import { callback, type Transport } from './presence-clients.js';

export { cpuMsOf, healthzMs, rssOf };

export interface ServerWatch {
  /** Slowest /healthz answered. */
  maxHealthzMs: number;
  healthzChecks: number;
  /** /healthz requests not answered 200 within 1 s. */
  healthzFailures: number;
  maxRssBytes: number;
}

/**
 * Polls /healthz (one request at a time, each given 1 s) and the RSS of `pid` until
 * stopped; stop() waits for the request in flight.
 */
export function watchServer(url: string, pid: number): { stop(): Promise<ServerWatch> } {
  const watch: ServerWatch = { maxHealthzMs: 0, healthzChecks: 0, healthzFailures: 0, maxRssBytes: rssOf(pid) };
  let stopped = false;
  const rssTimer = setInterval(() => {
    watch.maxRssBytes = Math.max(watch.maxRssBytes, rssOf(pid));
  }, 50);
  const loop = (async () => {
    while (!stopped) {
      const ms = await healthzMs(url);
      watch.healthzChecks++;
      if (ms === Infinity) watch.healthzFailures++;
      else watch.maxHealthzMs = Math.max(watch.maxHealthzMs, ms);
      // A probe cadence, not a wait for something: a check every ~50 ms.
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    async stop() {
      stopped = true;
      clearInterval(rssTimer);
      await loop;
      watch.maxRssBytes = Math.max(watch.maxRssBytes, rssOf(pid));
      return watch;
    },
  };
}

export interface Committer {
  commits: number;
  maxAckMs: number;
}

/**
 * A bystander: submits one json1 op to `doc` (field `n` +1) after the previous one was
 * acknowledged, every `everyMs` at most, until stopped.
 */
export function keepCommitting(doc: Doc, everyMs = 20): { stop(): Promise<Committer> } {
  const result: Committer = { commits: 0, maxAckMs: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      await callback((done) => doc.submitOp(['n', { ena: 1 }], {}, done));
      const ackMs = performance.now() - started;
      result.commits++;
      result.maxAckMs = Math.max(result.maxAckMs, ackMs);
      // The bystander's own cadence (a user typing fast), not a wait for a condition.
      if (!stopped && ackMs < everyMs) await new Promise((resolve) => setTimeout(resolve, everyMs - ackMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return result;
    },
  };
}

const WATCHER = fileURLToPath(new URL('./presence-watcher.ts', import.meta.url));

/** What the watcher process saw during one attack. */
export interface Watched {
  watched: ServerWatch;
  wrote: Committer;
}

/** Controls a presence-watcher.ts process observing the server at `url` (process `pid`). */
export interface Watcher {
  /** Starts watching and a bystander committing to `collection/id` over `transport`. */
  start(collection: string, id: string, transport: Transport): Promise<void>;
  stop(): Promise<Watched>;
  /** Ends the process (closing its clients); kills it if it does not exit in 5 s. */
  close(): Promise<void>;
}

export function startWatcher(url: string, pid: number): Watcher {
  const { child, events, stderr: stderrText, gone, exited } = spawnJsonLines(['--import', 'tsx', WATCHER, url, String(pid)]);
  const next = async (name: string): Promise<Record<string, unknown>> => {
    const found = await waitFor(
      () => {
        const index = events.findIndex((e) => e.event === name || e.event === 'fatal');
        if (index < 0) {
          if (gone()) throw new Error(`watcher exited (${child.exitCode}) before "${name}": ${stderrText()}`);
          return null;
        }
        const [event] = events.splice(index, 1);
        if (event!.event === 'fatal') throw new Error(`watcher failed: ${String(event!.message)}`);
        return event!;
      },
      { timeoutMs: 20_000, what: `watcher event "${name}"` },
    );
    return found!;
  };
  const send = (command: object) => child.stdin!.write(`${JSON.stringify(command)}\n`);
  return {
    async start(collection, id, transport) {
      send({ start: { collection, id, transport } });
      await next('started');
    },
    async stop() {
      send({ stop: true });
      const event = await next('stopped');
      return { watched: event.watched as ServerWatch, wrote: event.wrote as Committer };
    },
    async close() {
      if (gone()) return;
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
