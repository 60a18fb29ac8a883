/**
 * The load report as people read it: the HTML report of a made-up result opened in Chromium
 * (ack and seen histograms each readable on their own scale, no always-empty series), and
 * the line under the latency table.
 */
import assert from 'node:assert/strict';
import { optionsFromFlags } from '../../load/command.js';
import { BUCKETS_PER_OCTAVE } from '../../load/ipc.js';
import { reportedOptions, validateOptions } from '../../load/options.js';
import { bucketFloorUs } from '../../load/recorder.js';
import { renderHtmlReport } from '../../load/report-html.js';
import type { LatencySummary, LoadResult, TimelinePoint } from '../../load/result.js';
import { fmtLatency, latencyNote } from '../../load/summary.js';
import { requireService } from '../helpers/skip.js';
import { chromiumAvailable, launchUser, Teardown } from '../browser/helpers-browser.js';

const latency = (p50: number, count: number): LatencySummary => ({
  count,
  mean: p50,
  p50,
  p90: p50 * 2,
  p99: p50 * 3,
  p999: p50 * 4,
  max: p50 * 5,
});

/** A run of 8 clients per document: each op is seen 7 times, so seen counts dwarf ack counts. */
function sampleResult(serverLoopDelay: boolean): LoadResult {
  const options = reportedOptions(
    validateOptions(
      optionsFromFlags({
        url: ['http://127.0.0.1:8080'],
        transport: 'socketio',
        clients: '16',
        docs: '2',
        mix: 'text=80,struct=15,presence=5',
        rate: '5',
        duration: '4s',
        warmup: '1s',
        ramp: '0',
        chaos: '0',
        chaosOffline: '200-2000',
        seed: '1',
        collection: 'load',
        drainTimeout: '30s',
        connectTimeout: '20s',
        allowRemote: false,
        out: 'load-results',
        progress: 'none',
      }),
    ),
  );
  // Buckets from 0.5 ms to ~22 ms; ack peaks near 2 ms, seen near 4 ms, 7 deliveries per op.
  const first = 9 * BUCKETS_PER_OCTAVE - 4;
  const floorsMs = Array.from({ length: 22 }, (_, i) => Math.round(bucketFloorUs(first + i)) / 1000);
  const bell = (peak: number, scale: number) => floorsMs.map((_, i) => Math.round(scale * Math.exp(-((i - peak) ** 2) / 6)));
  const ack = bell(8, 40);
  const seen = bell(12, 40 * 7);
  const timeline: TimelinePoint[] = [1, 2, 3, 4, 5].map((t) => ({
    t,
    phase: t === 1 ? 'warmup' : 'measure',
    workersReporting: 1,
    ackedPerSec: 80,
    submittedPerSec: 80,
    serverCommitsPerSec: 80,
    presencePerSec: 4,
    ackP50: 2,
    ackP99: 6,
    seenP50: 4,
    seenP99: 11,
    online: 16,
    pending: 0,
    errors: 0,
    reconnects: 0,
    clientHeapBytes: 20e6,
    serverRssBytes: 120e6,
    loopDelayP99Ms: 3,
    ...(serverLoopDelay ? { serverLoopDelayP99Ms: 2 + t / 10 } : {}),
  }));
  return {
    tool: 'tandem-load',
    formatVersion: 1,
    label: 'made up',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:06.000Z',
    machine: { cpus: 2, cpuModel: 'test', totalMemBytes: 8 << 30, node: process.version, platform: 'test' },
    command: 'tandem load -c 16 -d 2',
    options,
    client: 'test',
    measuredSeconds: 4,
    setup: { clients: 16, connected: 16, connectFailed: 0, openFailed: 0, connectMs: 100, openDocsMs: 50, workers: 1 },
    throughput: { ackedPerSec: 80, submittedPerSec: 80, serverCommitsPerSec: 80, presencePerSec: 4 },
    latency: { ack: latency(2, 320), seen: latency(4, 2240), presence: latency(3, 16) },
    errors: {},
    failedOps: 0,
    reconnects: 0,
    chaosDisconnects: 0,
    delayedByDisconnect: 3,
    server: {
      source: 'test',
      commits: 320,
      commitRetries: 0,
      retriesPerCommit: 0,
      rejected: 0,
      rssBytes: 120e6,
      heapUsedBytes: 40e6,
      cpuMicrosPerCommit: 500,
      worstLoopDelayP99Ms: serverLoopDelay ? 2.5 : null,
    },
    clientMemory: { rssBytes: 100e6, heapUsedBytes: 20e6, heapPerClientBytes: 60e3 },
    loadGenerator: { worstLoopDelayP99Ms: 3, cpuMicrosPerOp: 900 },
    convergence: { docsChecked: 2, clientsChecked: 16, divergent: 0, details: [], undrained: 0, totalVersions: 322, passed: true },
    timeline,
    histogram: { floorsMs, ack, seen },
    percentiles: {
      ack: [
        [0, 1],
        [50, 2],
        [90, 4],
        [99, 6],
        [100, 10],
      ],
      seen: [
        [0, 2],
        [50, 4],
        [90, 8],
        [99, 11],
        [100, 22],
      ],
    },
    passed: true,
    failures: [],
    warnings: [],
  };
}

/** What the report page shows of its charts (window.reportCharts, set by the page script). */
interface ChartsView {
  latencySeries: string[];
  histograms: Array<{ title: string; tallestBarShare: number; xMin: number; xMax: number }>;
}

describe('load report in Chromium', function () {
  this.timeout(60_000);
  const teardown = new Teardown();

  before(function () {
    requireService(this, chromiumAvailable(), 'Debian chromium at /usr/bin/chromium (apt-get install chromium)');
  });
  afterEach(() => teardown.run());

  async function open(result: LoadResult): Promise<{ charts: ChartsView; note: string }> {
    const user = await launchUser('report', teardown.add);
    await user.page.setContent(await renderHtmlReport(result));
    const view = await user.page.evaluate(() => {
      // uPlot instances as the page script keeps them; only what is read here is typed.
      interface Plot {
        series: Array<{ label?: string }>;
        data: number[][];
        over: HTMLElement;
        root: HTMLElement;
        scales: { x: { min?: number; max?: number } };
        valToPos(value: number, scale: string): number;
      }
      const charts = (window as unknown as { reportCharts: { latencyTime: Plot; histogram: Plot[] } }).reportCharts;
      return {
        charts: {
          latencySeries: charts.latencyTime.series.slice(1).map((s) => s.label ?? ''),
          histograms: charts.histogram.map((u) => {
            const tallest = Math.max(...u.data[1]!);
            return {
              title: u.root.querySelector('.u-title')?.textContent ?? '',
              // Height of the tallest bar as a share of the plot area's height.
              tallestBarShare: (u.valToPos(0, 'y') - u.valToPos(tallest, 'y')) / u.over.clientHeight,
              xMin: u.scales.x.min ?? NaN,
              xMax: u.scales.x.max ?? NaN,
            };
          }),
        },
        note: document.getElementById('latency-note')?.textContent ?? '',
      };
    });
    assert.deepEqual(user.log, [], 'no page errors');
    return view;
  }

  it('shows ack and seen histograms each on its own count scale, over the same latency axis', async () => {
    const { charts } = await open(sampleResult(false));
    assert.equal(charts.histograms.length, 2, 'one panel for ack, one for seen');
    assert.match(charts.histograms[0]!.title, /^submit→ack/);
    assert.match(charts.histograms[1]!.title, /^submit→seen/);
    // On one shared count axis ack's tallest bar would be 1/7 of seen's; here each fills its panel.
    for (const h of charts.histograms)
      assert.ok(h.tallestBarShare > 0.8, `${h.title}: tallest bar ${h.tallestBarShare.toFixed(2)} of the plot`);
    const [a, s] = charts.histograms;
    assert.deepEqual([a!.xMin, a!.xMax], [s!.xMin, s!.xMax], 'the same latency range');
    assert.ok(a!.xMin <= 0.5 && a!.xMax >= 22, `x from ${a!.xMin} to ${a!.xMax} ms holds every bucket`);
  });

  it('has no server event-loop series when the server does not report one, and one when it does', async () => {
    const bare = await open(sampleResult(false));
    assert.deepEqual(bare.charts.latencySeries, ['ack p50', 'ack p99', 'seen p50', 'seen p99', 'load-gen loop delay p99']);
    const hosted = await open(sampleResult(true));
    assert.ok(hosted.charts.latencySeries.includes('server loop delay p99'));
  });

  it('says under the latency table what the rows measure instead of repeating the ack row', async () => {
    const result = sampleResult(false);
    const { note } = await open(result);
    assert.equal(note, latencyNote(result));
    assert.ok(!note.includes(fmtLatency(result.latency.ack)) && !/p50 [\d.]+ {2}p90/.test(note), note);
    for (const words of [
      'Measured window only (4 s)',
      'scheduled',
      'submit→ack',
      'submit→seen by others',
      'presence→seen',
      '3 over the whole run',
    ]) {
      assert.ok(note.includes(words), `note mentions "${words}": ${note}`);
    }
  });
});
