/** The plain-text summary printed at the end of a load run. */
import type { LatencySummary, LoadResult } from './result.js';

export const fmtBytes = (b: number | null): string =>
  b === null
    ? 'n/a'
    : b >= 1 << 30
      ? `${(b / (1 << 30)).toFixed(2)} GiB`
      : b >= 1 << 20
        ? `${(b / (1 << 20)).toFixed(1)} MiB`
        : `${(b / 1024).toFixed(1)} KiB`;

export const fmtLatency = (l: LatencySummary): string =>
  l.count === 0
    ? 'no samples'
    : `p50 ${l.p50.toFixed(2)}  p90 ${l.p90.toFixed(2)}  p99 ${l.p99.toFixed(2)}  p99.9 ${l.p999.toFixed(2)}  max ${l.max.toFixed(2)} ms  (n=${l.count})`;

/**
 * What the latency rows measure, for the line under the report's latency table: the rows
 * themselves carry the figures, this says what they are samples of and what is left out.
 */
export function latencyNote(r: LoadResult): string {
  return (
    `Measured window only (${r.measuredSeconds} s). Each latency runs from when the op was scheduled, so a late timer counts against it. ` +
    'submit→ack: until the server acknowledged the op (one sample per op); ' +
    'submit→seen by others: until another client of the document applied it (one sample per receiving client); ' +
    'presence→seen: a caret update until another client received it. ' +
    `Samples delayed by a disconnect are left out (${r.delayedByDisconnect} over the whole run).`
  );
}

export function formatSummary(r: LoadResult): string {
  const s = r.server;
  const errors = Object.entries(r.errors)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code}×${n}`)
    .join(', ');
  const c = r.convergence;
  const lines = [
    '',
    `── tandem load ${r.label ? `(${r.label}) ` : ''}── ${r.options.urls.join(', ')}`,
    `clients ${r.setup.connected}/${r.setup.clients} on ${r.options.docs} docs, ${r.setup.workers} worker(s); connect ${(r.setup.connectMs / 1000).toFixed(1)} s, open docs ${(r.setup.openDocsMs / 1000).toFixed(1)} s`,
    `measured ${r.measuredSeconds} s: acked ${r.throughput.ackedPerSec.toFixed(0)} ops/s, server commits ${s.commits === null ? 'n/a' : `${r.throughput.serverCommitsPerSec?.toFixed(0)}/s`}, presence ${r.throughput.presencePerSec.toFixed(0)}/s`,
    `submit→ack        ${fmtLatency(r.latency.ack)}`,
    `submit→seen       ${fmtLatency(r.latency.seen)}`,
    `presence→seen     ${fmtLatency(r.latency.presence)}`,
    `server retries ${s.commitRetries ?? 'n/a'} (${s.retriesPerCommit === null ? 'n/a' : s.retriesPerCommit.toFixed(3)} per commit), rejected ${s.rejected ?? 'n/a'}; server RSS ${fmtBytes(s.rssBytes)}, heap ${fmtBytes(s.heapUsedBytes)}`,
    `CPU: server ${s.cpuMicrosPerCommit === null ? 'n/a' : `${s.cpuMicrosPerCommit.toFixed(0)} µs/commit`}, load generators ${r.loadGenerator.cpuMicrosPerOp === null ? 'n/a' : `${r.loadGenerator.cpuMicrosPerOp.toFixed(0)} µs/op`}` +
      (s.worstLoopDelayP99Ms === null ? '' : `; server event-loop delay p99 ≤ ${s.worstLoopDelayP99Ms.toFixed(1)} ms`),
    `client memory: heap ${fmtBytes(r.clientMemory.heapUsedBytes)} (${fmtBytes(r.clientMemory.heapPerClientBytes)}/client), RSS ${fmtBytes(r.clientMemory.rssBytes)}; load generator loop delay p99 ≤ ${r.loadGenerator.worstLoopDelayP99Ms.toFixed(1)} ms`,
    `reconnects ${r.reconnects} (chaos disconnects ${r.chaosDisconnects}); samples delayed by a disconnect ${r.delayedByDisconnect}; failed ops ${r.failedOps}`,
    `errors: ${errors || 'none'}`,
    `convergence: ${c.passed ? 'PASS' : 'FAIL'} — ${c.clientsChecked} client copies of ${c.docsChecked} docs checked, ${c.divergent} divergent, ${c.undrained} undrained`,
    ...c.details
      .slice(0, 5)
      .map((d) => `  ${d.docId} client ${d.client}: ${d.reason} (client v${d.clientVersion}, server v${d.serverVersion})`),
    ...r.warnings.map((w) => `WARNING: ${w}`),
    ...r.failures.map((f) => `FAILED: ${f}`),
  ];
  return lines.join('\n');
}
