/**
 * What every connection attack test checks while and after the attack runs: the server
 * process answers /healthz within 1 s, its resident memory stays under a bound, and
 * bystander clients (a stock ShareDB client on /sharedb and a Tandem SDK client on
 * socket.io, from 127.0.0.1) keep committing.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { TandemClient } from '../../client/index.js';
import type { DocHandle } from '../../client/doc-handle.js';
import { ops } from '../../ot-types/index.js';
import { create, stockClient, submit, subscribe, type Doc } from '../helpers/clients.js';
import { sdkClient } from '../helpers/sdk-clients.js';
import { rssOf } from '../helpers/process-stats.js';
import { waitFor } from '../helpers/wait.js';

export const HEALTHZ_LIMIT_MS = 1_000;

export { rssOf };

/** One GET; resolves with status and body, or status 0 when no answer came within `timeoutMs`. */
export function httpGet(url: string, timeoutMs = 5_000): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started }));
      res.on('error', () => resolve({ status: 0, body, ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '', ms: performance.now() - started }));
    req.end();
  });
}

/** /healthz latency, ms; Infinity when it did not answer 200 within HEALTHZ_LIMIT_MS. */
export async function healthzMs(url: string): Promise<number> {
  const answer = await httpGet(`${url}/healthz`, HEALTHZ_LIMIT_MS);
  return answer.status === 200 ? answer.ms : Infinity;
}

/** ShareDB agents (client connections) the server holds, from /metrics.json. */
export async function agentsOf(url: string): Promise<number> {
  const answer = await httpGet(`${url}/metrics.json`);
  assert.equal(answer.status, 200, `/metrics.json: ${answer.body}`);
  return (JSON.parse(answer.body) as { agents: number }).agents;
}

export interface WatchReport {
  maxHealthzMs: number;
  healthzChecks: number;
  maxRssBytes: number;
}

/** How often the watch samples while an attack runs (a monitor's period, not a wait). */
const SAMPLE_MS = 50;
/** Bystanders commit a round this often during an attack: steady traffic, not a flood. */
const ROUND_PERIOD_MS = 25;

/**
 * Samples /healthz (one request at a time) and the server process's RSS until stopped.
 * `stop()` waits for the request in flight and returns the worst of each.
 */
export function watchServer(url: string, pid: number): { stop(): Promise<WatchReport> } {
  const report: WatchReport = { maxHealthzMs: 0, healthzChecks: 0, maxRssBytes: rssOf(pid) };
  let running = true;
  let wake: (() => void) | null = null;
  let timer: NodeJS.Timeout | null = null;
  const loop = (async () => {
    while (running) {
      report.maxRssBytes = Math.max(report.maxRssBytes, rssOf(pid));
      report.maxHealthzMs = Math.max(report.maxHealthzMs, await healthzMs(url));
      report.healthzChecks++;
      report.maxRssBytes = Math.max(report.maxRssBytes, rssOf(pid));
      if (!running) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, SAMPLE_MS);
      });
    }
  })();
  return {
    stop: async () => {
      running = false;
      if (timer) clearTimeout(timer);
      wake?.();
      await loop;
      return report;
    },
  };
}

/** Asserts what the issue asks of every attack: /healthz within 1 s, RSS under the bound. */
export function assertHealthy(report: WatchReport, rssLimitBytes: number, what: string): void {
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  if (process.env.RESILIENCE_VERBOSE)
    console.log(
      `      ${what}: /healthz max ${report.maxHealthzMs.toFixed(0)} ms over ${report.healthzChecks} checks, RSS max ${mb(report.maxRssBytes)} (bound ${mb(rssLimitBytes)})`,
    );
  assert.ok(report.healthzChecks >= 1, `${what}: /healthz was checked`);
  assert.ok(
    report.maxHealthzMs < HEALTHZ_LIMIT_MS,
    `${what}: /healthz took ${report.maxHealthzMs.toFixed(0)} ms (limit ${HEALTHZ_LIMIT_MS})`,
  );
  assert.ok(report.maxRssBytes < rssLimitBytes, `${what}: RSS reached ${mb(report.maxRssBytes)} (bound ${mb(rssLimitBytes)})`);
}

/**
 * Clients the attack must not hurt, from 127.0.0.1: a stock ShareDB client on /sharedb and
 * an SDK client on socket.io, each on its own document. `commitRound()` makes each commit
 * one op and waits for the acknowledgements.
 */
export class Bystanders {
  private round = 0;

  private constructor(
    private readonly stockDoc: Doc,
    private readonly closeStock: () => void,
    private readonly sdk: TandemClient,
    private readonly sdkDoc: DocHandle<{ n: number[] }>,
  ) {}

  static async start(url: string, name: string): Promise<Bystanders> {
    const stock = stockClient(url);
    const stockDoc = stock.connection.get('bystanders', `${name}-stock`);
    await subscribe(stockDoc);
    if (stockDoc.type === null) await create(stockDoc, { n: [] });
    const closers: Array<() => Promise<void>> = [];
    const sdk = sdkClient(url, closers);
    const sdkDoc = sdk.doc<{ n: number[] }>('bystanders', `${name}-sdk`, { create: { n: [] } });
    await sdkDoc.ready;
    return new Bystanders(stockDoc, () => stock.close(), sdk, sdkDoc);
  }

  /** Both clients commit one op each; rejects if either is not acknowledged within `timeoutMs`. */
  async commitRound(timeoutMs = 5_000): Promise<void> {
    const n = ++this.round;
    this.sdkDoc.submit(ops.insert(['n', 0], n));
    const acked = Promise.all([submit(this.stockDoc, ops.insert(['n', 0], n)), this.sdkDoc.whenSynced()]);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`bystanders: round ${n} not acknowledged within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([acked, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Commits a round every ROUND_PERIOD_MS until `until` settles (at least one round, and one
   * more after it settled if it settled mid-round); resolves with `until`'s value.
   */
  async commitWhile<T>(until: Promise<T>): Promise<T> {
    let done = false;
    const settled = until.then(
      () => (done = true),
      () => (done = true),
    );
    for (;;) {
      await this.commitRound();
      if (done) break;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(resolve, ROUND_PERIOD_MS)))]);
      clearTimeout(timer);
    }
    return until;
  }

  async close(): Promise<void> {
    this.closeStock();
    await this.sdk.close();
  }
}

/** Waits until the server holds at most `agents` client connections (their cleanup ran). */
export async function untilAgents(url: string, agents: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => (await agentsOf(url)) <= agents, { timeoutMs, intervalMs: 50, what: `at most ${agents} agents` });
}
