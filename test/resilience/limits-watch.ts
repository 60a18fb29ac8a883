/**
 * What the rate and document attack tests watch while an attack runs: that the server
 * answers /healthz within 1 s, the RSS of its process (Linux /proc), and a bystander on its
 * own connection committing ops the whole time.
 */
import { healthzMs, rssOf } from '../helpers/process-stats.js';
import type { Doc } from 'sharedb/lib/client/index.js';
import { WireClient, type TransportName } from '../integration/bad-input-wire.js';
import { create, stockClient } from '../helpers/clients.js';

export interface HealthReport {
  /** Slowest /healthz answer, ms (Infinity if one did not come within 1 s). */
  maxHealthzMs: number;
  healthzChecks: number;
  /** Highest RSS seen, bytes (0 when no pid was given: an in-process server). */
  maxRssBytes: number;
}

/** Probes /healthz back to back (and samples RSS) until stopped. */
export function watchHealth(url: string, pid: number | null): { stop(): Promise<HealthReport> } {
  const report: HealthReport = { maxHealthzMs: 0, healthzChecks: 0, maxRssBytes: pid ? rssOf(pid) : 0 };
  let stopped = false;
  const sample = () => {
    if (pid) report.maxRssBytes = Math.max(report.maxRssBytes, rssOf(pid));
  };
  const loop = (async () => {
    while (!stopped) {
      const ms = await healthzMs(url);
      report.healthzChecks++;
      report.maxHealthzMs = Math.max(report.maxHealthzMs, ms);
      sample();
      // Probe cadence (about 20 a second), not a wait for a condition.
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      sample();
      return report;
    },
  };
}

export interface BystanderReport {
  commits: number;
  /** Slowest acknowledgement, ms. */
  maxAckMs: number;
  errors: string[];
}

/**
 * Another user at work: adds 1 to `n` in `doc` (a stock ShareDB doc, loaded) after each
 * acknowledgement, at most every `everyMs`, until stopped. Well under any default budget.
 */
export function bystander(doc: Doc, everyMs = 25): { stop(): Promise<BystanderReport> } {
  const report: BystanderReport = { commits: 0, maxAckMs: 0, errors: [] };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      const err = await new Promise<unknown>((resolve) => doc.submitOp(['n', { ena: 1 }], {}, (e) => resolve(e)));
      const ackMs = performance.now() - started;
      if (err) report.errors.push(`${(err as { code?: string }).code}: ${(err as Error).message}`);
      else report.commits++;
      report.maxAckMs = Math.max(report.maxAckMs, ackMs);
      // The bystander's typing cadence, not a wait for a condition.
      if (!stopped && ackMs < everyMs) await new Promise((resolve) => setTimeout(resolve, everyMs - ackMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return report;
    },
  };
}

/**
 * The two sides of an attack test: a bystander document (`collection/bystander`, on a stock
 * client of its own) and the attacker's raw wire client over `transport`, handshaken. Both
 * are closed by `closers`.
 */
export async function openAttack(
  url: string,
  transport: TransportName,
  collection: string,
  closers: Array<() => Promise<void>>,
): Promise<{ otherDoc: Doc; attacker: WireClient }> {
  const other = stockClient(url);
  closers.push(async () => other.close());
  const otherDoc = other.connection.get(collection, 'bystander');
  await create(otherDoc, { n: 0 });
  const attacker = await WireClient.open(transport, url);
  closers.push(() => attacker.close());
  await attacker.handshake();
  return { otherDoc, attacker };
}
