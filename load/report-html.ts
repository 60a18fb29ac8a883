/**
 * A self-contained HTML report: uPlot's script and stylesheet are inlined and the result is
 * embedded as JSON, so the file opens offline in any browser. The page script (below, as
 * text) only reads the embedded data; it builds the charts with uPlot.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { BUCKETS_PER_OCTAVE } from './ipc.js';
import type { LoadResult } from './result.js';
import { fmtBytes, latencyNote } from './summary.js';

const require = createRequire(import.meta.url);

/** Chart container ids (the smoke test checks they are present). */
export const CHART_IDS = ['chart-throughput', 'chart-latency-time', 'chart-histogram', 'chart-percentiles', 'chart-memory'] as const;

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
/** JSON inside <script>: `<` escaped so no "</script>" can close the element. */
const embedJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

const PAGE_CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.meta{color:#666;font-size:12px} .badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.pass{background:#2a8a3e} .fail{background:#c0392b}
table{border-collapse:collapse;margin:6px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:13px}
th{background:#f5f5f5} .chart{margin:6px 0 18px} .note{color:#666;font-size:12px}
code{background:#f3f3f3;padding:0 3px}`;

/** Runs in the browser: builds the charts from the embedded result. */
const PAGE_SCRIPT = `
const r = JSON.parse(document.getElementById('result').textContent);
const W = Math.min(1150, document.body.clientWidth - 10);
const tl = r.timeline;
const t = tl.map(p => p.t);
// The uPlot instances, for the report's tests and for poking at in the console.
const charts = window.reportCharts = { histogram: [] };
// No worker report for that second (a starved generator never answered): a gap, not a zero.
const w = (p, v) => p.workersReporting > 0 ? v : null;
const shadeUnmeasured = u => {
  const ctx = u.ctx; ctx.save(); ctx.fillStyle = 'rgba(0,0,0,0.06)';
  tl.forEach((p, i) => {
    if (p.phase === 'measure') return;
    const x0 = u.valToPos(i === 0 ? p.t - 1 : tl[i - 1].t, 'x', true), x1 = u.valToPos(p.t, 'x', true);
    ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
  });
  ctx.restore();
};
const timeOpts = (title, yLabel, series, log) => ({
  title, width: W, height: 280, scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
  axes: [{ label: 'seconds since start' }, { label: yLabel }],
  series: [{ label: 's' }, ...series], hooks: { drawClear: [shadeUnmeasured] },
});
charts.throughput = new uPlot(timeOpts('Throughput (shaded: ramp-up / warm-up, not measured)', 'ops/s', [
  { label: 'acked ops/s (clients)', stroke: '#1f77b4', width: 2 },
  { label: 'server commits/s', stroke: '#2ca02c', width: 2 },
  { label: 'submitted ops/s', stroke: '#aaa', dash: [4, 4] },
  { label: 'presence seen/s', stroke: '#9467bd' },
]), [t, tl.map(p => w(p, p.ackedPerSec)), tl.map(p => p.serverCommitsPerSec), tl.map(p => w(p, p.submittedPerSec)), tl.map(p => w(p, p.presencePerSec))],
  document.getElementById('chart-throughput'));
// Only a server that reports its event-loop delay (the benchmark's server host) gets a series:
// GET /metrics has no such figure, and an always-empty series would only mislead.
const serverLoop = tl.some(p => p.serverLoopDelayP99Ms !== undefined);
const latencySeries = [
  { label: 'ack p50', stroke: '#1f77b4' }, { label: 'ack p99', stroke: '#d62728', width: 2 },
  { label: 'seen p50', stroke: '#17becf' }, { label: 'seen p99', stroke: '#ff7f0e', width: 2 },
  { label: 'load-gen loop delay p99', stroke: '#8c564b', dash: [3, 3] },
];
const latencyData = [t, tl.map(p => p.ackP50), tl.map(p => p.ackP99), tl.map(p => p.seenP50), tl.map(p => p.seenP99),
  tl.map(p => w(p, p.loopDelayP99Ms || null))];
if (serverLoop) {
  latencySeries.push({ label: 'server loop delay p99', stroke: '#e377c2', dash: [3, 3] });
  latencyData.push(tl.map(p => p.serverLoopDelayP99Ms || null));
}
charts.latencyTime = new uPlot(timeOpts(serverLoop ? 'Latency percentiles per second, and event-loop delays (log scale)'
  : "Latency percentiles per second, and the load generators' event-loop delay (log scale; the server reports none)", 'ms', latencySeries, true),
  latencyData, document.getElementById('chart-latency-time'));
const h = r.histogram;
const histEl = document.getElementById('chart-histogram');
if (h.floorsMs.length > 0) {
  // One panel each, with its own count axis: every op is seen by each other client of its
  // document, so seen counts run several times ack counts and would flatten ack on a shared
  // axis. The x axes (log, whole decades) match, so the panels compare position for position.
  const step = 2 ** (1 / ${BUCKETS_PER_OCTAVE}); // a bucket's upper bound over its lower bound
  const lo = 10 ** Math.floor(Math.log10(h.floorsMs[0]));
  const hi = 10 ** Math.ceil(Math.log10(h.floorsMs[h.floorsMs.length - 1] * step));
  const panels = [
    ['submit→ack', h.ack, '#1f77b4', 'rgba(31,119,180,0.35)', 'ops acknowledged', 'one sample per op'],
    ['submit→seen by others', h.seen, '#ff7f0e', 'rgba(255,127,14,0.35)', 'deliveries', 'one sample per receiving client'],
  ];
  for (const [label, counts, stroke, fill, yLabel, per] of panels) {
    const el = document.createElement('div');
    histEl.append(el);
    if (!counts.some(c => c > 0)) { el.textContent = 'no ' + label + ' samples in the measured window'; continue; }
    charts.histogram.push(new uPlot({
      title: label + ' latency histogram, measured window (quarter-octave buckets, ' + per + ')', width: W, height: 220,
      cursor: { sync: { key: 'histogram' } },
      scales: { x: { time: false, distr: 3, range: () => [lo, hi] }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.05] } },
      axes: [{ label: 'latency ms (log; a bar spans its bucket)' }, { label: yLabel }],
      series: [{ label: 'from ms' }, { label, stroke, fill, paths: uPlot.paths.bars({ size: [0.9, 80], align: 1 }), points: { show: false } }],
    }, [h.floorsMs, counts], el));
  }
} else histEl.textContent = 'no latency samples in the measured window';
const curve = r.percentiles.ack.length ? r.percentiles.ack : r.percentiles.seen;
if (curve.length > 0) {
  const xs = curve.map(([p], i) => p < 100 ? 100 / (100 - p) : 100 / (100 - curve[i - 1][0]) * 1.78);
  const pick = (c) => curve.map((_, i) => c.length ? c[i][1] : null);
  charts.percentiles = new uPlot({
    title: 'Latency by percentile, measured window (HDR histogram)', width: W, height: 300,
    scales: { x: { time: false, distr: 3 }, y: { distr: 3 } },
    axes: [{ label: 'percentile (log scale of 1/(1-p))', splits: (u, ax, min, max) => [1, 10, 100, 1e3, 1e4, 1e5].filter(v => v >= min && v <= max),
        values: (u, vals) => vals.map(v => ({ 1: '0%', 10: '90%', 100: '99%', 1000: '99.9%', 10000: '99.99%', 100000: '99.999%' })[v] ?? '') },
      { label: 'ms (log)' }],
    series: [{ label: 'x', value: (u, v, i) => i == null ? '' : (curve[i][0] === 100 ? 'max' : curve[i][0] + '%') },
      { label: 'submit→ack', stroke: '#1f77b4', width: 2, points: { show: true } },
      { label: 'submit→seen', stroke: '#ff7f0e', width: 2, points: { show: true } }],
  }, [xs, pick(r.percentiles.ack), pick(r.percentiles.seen)], document.getElementById('chart-percentiles'));
}
const MB = b => b == null ? null : b / 1048576;
charts.memory = new uPlot(timeOpts('Memory', 'MiB', [
  { label: 'load generators heap', stroke: '#8c564b' }, { label: 'server RSS', stroke: '#e377c2', width: 2 },
]), [t, tl.map(p => w(p, MB(p.clientHeapBytes))), tl.map(p => MB(p.serverRssBytes))], document.getElementById('chart-memory'));
`;

function row(cells: Array<string | number>, header = false): string {
  const tag = header ? 'th' : 'td';
  return `<tr>${cells.map((c) => `<${tag}>${escapeHtml(String(c))}</${tag}>`).join('')}</tr>`;
}

function latencyRows(r: LoadResult): string {
  const rows = [row(['', 'samples', 'p50', 'p90', 'p99', 'p99.9', 'max (ms)'], true)];
  for (const [name, l] of [
    ['submit→ack', r.latency.ack],
    ['submit→seen by others', r.latency.seen],
    ['presence→seen', r.latency.presence],
  ] as const) {
    rows.push(row([name, l.count, l.p50, l.p90, l.p99, l.p999, l.max]));
  }
  return rows.join('');
}

export async function renderHtmlReport(r: LoadResult): Promise<string> {
  const [uplotJs, uplotCss] = await Promise.all([
    readFile(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  ]);
  const s = r.server;
  const c = r.convergence;
  const errors = Object.entries(r.errors).sort((a, b) => b[1] - a[1]);
  const o = r.options;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tandem load report${r.label ? ` — ${escapeHtml(r.label)}` : ''}</title>
<style>${uplotCss}</style><style>${PAGE_CSS}</style></head><body>
<h1>Tandem load report ${r.label ? `— ${escapeHtml(r.label)} ` : ''}<span class="badge ${r.passed ? 'pass' : 'fail'}">${r.passed ? 'PASS' : 'FAIL'}</span></h1>
<div class="meta">${escapeHtml(r.startedAt)} · ${escapeHtml(o.urls.join(', '))} · ${escapeHtml(r.client)}<br>
${r.machine.cpus} CPU (${escapeHtml(r.machine.cpuModel)}), ${fmtBytes(r.machine.totalMemBytes)} RAM, Node ${escapeHtml(r.machine.node)}, ${escapeHtml(r.machine.platform)}<br>
<code>${escapeHtml(r.command || '(programmatic run)')}</code></div>
${r.failures.length ? `<p><b>Failures:</b> ${r.failures.map(escapeHtml).join('; ')}</p>` : ''}
${r.warnings.length ? `<p><b>Warnings:</b> ${r.warnings.map(escapeHtml).join('; ')}</p>` : ''}
<h2>Summary (measured window: ${r.measuredSeconds} s)</h2>
<table>
${row(['clients', `${r.setup.connected} of ${r.setup.clients} connected, ${o.docs} docs, ${r.setup.workers} worker process(es)`])}
${row([
  'workload',
  `rate ${o.rate === 'max' ? 'max (closed loop, 1 op in flight)' : `${o.rate}/s per client (open loop)`}, mix ${Object.entries(o.mix)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}, chaos ${o.chaosPerMin}/min, seed ${o.seed}`,
])}
${row(['throughput', `acked ${r.throughput.ackedPerSec.toFixed(0)} ops/s · server commits ${r.throughput.serverCommitsPerSec === null ? 'n/a' : r.throughput.serverCommitsPerSec.toFixed(0) + '/s'} · presence ${r.throughput.presencePerSec.toFixed(0)}/s`])}
${row(['server', `retries ${s.commitRetries ?? 'n/a'} (${s.retriesPerCommit === null ? 'n/a' : s.retriesPerCommit.toFixed(3)}/commit) · rejected ${s.rejected ?? 'n/a'} · RSS ${fmtBytes(s.rssBytes)} · heap ${fmtBytes(s.heapUsedBytes)} · CPU ${s.cpuMicrosPerCommit === null ? 'n/a' : `${s.cpuMicrosPerCommit.toFixed(0)} µs/commit`}${s.worstLoopDelayP99Ms === null ? '' : ` · event-loop delay p99 ≤ ${s.worstLoopDelayP99Ms.toFixed(1)} ms`} · source: ${s.source}`])}
${row(['load generators', `heap ${fmtBytes(r.clientMemory.heapUsedBytes)} (${fmtBytes(r.clientMemory.heapPerClientBytes)} per client) · RSS ${fmtBytes(r.clientMemory.rssBytes)} · CPU ${r.loadGenerator.cpuMicrosPerOp === null ? 'n/a' : `${r.loadGenerator.cpuMicrosPerOp.toFixed(0)} µs/op`} · generator loop delay p99 ≤ ${r.loadGenerator.worstLoopDelayP99Ms.toFixed(1)} ms`])}
${row(['disconnects', `reconnects ${r.reconnects} · chaos disconnects ${r.chaosDisconnects} · samples delayed by a disconnect (not in histograms) ${r.delayedByDisconnect}`])}
${row(['convergence', `${c.passed ? 'PASS' : 'FAIL'}: ${c.clientsChecked} client copies of ${c.docsChecked} documents compared with the server snapshot; ${c.divergent} divergent; ${c.undrained} undrained`])}
</table>
<h2>Latency (ms)</h2><table>${latencyRows(r)}</table>
<p class="note" id="latency-note">${escapeHtml(latencyNote(r))}</p>
<h2>Errors by code</h2>
${errors.length ? `<table>${row(['code', 'count'], true)}${errors.map(([k, v]) => row([k, v])).join('')}</table>` : '<p>none</p>'}
${c.details.length ? `<h2>Divergences</h2><table>${row(['doc', 'client', 'client v', 'server v', 'reason'], true)}${c.details.map((d) => row([d.docId, d.client, d.clientVersion ?? '-', d.serverVersion, d.reason])).join('')}</table>` : ''}
<h2>Charts</h2>
${CHART_IDS.map((id) => `<div class="chart" id="${id}"></div>`).join('\n')}
<script id="result" type="application/json">${embedJson(r)}</script>
<script>${uplotJs}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
