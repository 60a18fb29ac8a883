/**
 * 10,000 connections that never authenticate, against a server process started with
 * AUTH_JWT_SECRET and AUTH_TIMEOUT_MS = 6000 (client and server sockets are split over two
 * processes, so each stays well under `ulimit -n`). The mix, interleaved:
 *
 * - raw TCP that connects and sends nothing, and raw TCP that sends an unfinished HTTP request:
 *   closed by the HTTP server's headersTimeout (= AUTH_TIMEOUT_MS, checked every second);
 * - engine.io WebSockets that complete the engine.io open but never send socket.io's CONNECT:
 *   closed by socket.io's connectTimeout (= AUTH_TIMEOUT_MS);
 * - /sharedb upgrades without a token: refused at once with 401.
 *
 * Asserted: every connection is closed by the server, the idle ones not before AUTH_TIMEOUT_MS
 * and within AUTH_TIMEOUT_MS + CLOSE_MARGIN_MS of connecting; the server's live heap grows by
 * less than HEAP_BYTES_PER_CONNECTION per pending connection (plus HEAP_FIXED_BYTES) and is
 * back near its baseline once they are gone; an authenticated client connects and commits an op
 * during the flood (and its connection outlives the timeout). The figures are printed (for
 * BENCHMARKS.md).
 *
 * The heap figure is `memory.heapUsed` from GET /metrics, read right after a full GC forced
 * through the server's inspector, so it is the live heap, not live heap plus uncollected
 * garbage (the raw /metrics maximum is printed too). RSS is VmRSS from /proc/<pid>/status.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type NetConnectOpts, type Socket } from 'node:net';
import WebSocket from 'ws';
import { SHAREDB_WS_PATH } from '../../client/protocol.js';
import { ops } from '../../ot-types/index.js';
import { AUTH_ENV, testToken } from '../helpers/auth.js';
import { create, socketClient, submit, subscribe } from '../helpers/clients.js';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { freePort } from '../helpers/system.js';
import { waitFor } from '../helpers/wait.js';
import type { SocketConnection } from '../../client/connect.js';

/**
 * Long enough for the flood to be open before the peak reading (2.5 s on a quiet machine, up to
 * 4.6 s in a loaded full run): a reading taken while handshakes are still streaming in counts
 * their garbage as live heap (a full run measured 13.8 KB per pending connection that way, at 3 s).
 */
const AUTH_TIMEOUT_MS = 6_000;
/** How many of each kind (10,000 in all). */
const MIX = { tcpSilent: 2_500, tcpPartial: 2_500, engineIo: 4_000, sharedbNoToken: 1_000 } as const;
type Kind = keyof typeof MIX;
const KINDS = Object.keys(MIX) as Kind[];
const IDLE_KINDS = ['tcpSilent', 'tcpPartial', 'engineIo'] as const;
const TOTAL = Object.values(MIX).reduce((a, b) => a + b, 0);
const IDLE_TOTAL = TOTAL - MIX.sharedbNoToken;
/** A smaller flood first, so the baseline already has the flood's code compiled. */
const WARM_UP_EACH = 50;
/** Connections being opened at once. */
const CONCURRENCY = 200;
/**
 * headersTimeout is checked once a second (connectionsCheckingInterval), so a raw TCP
 * connection may stay up to ~1 s past the timeout, plus accept-queue and event-loop lag on a
 * busy two-core machine (measured: ≤ 1.2 s past the timeout on a quiet machine, ≤ 1.9 s with other test
 * suites running beside). Still far below what would close them otherwise (requestTimeout
 * 30 s, engine.io ping 45 s).
 */
const CLOSE_MARGIN_MS = 4_000;
/**
 * A /sharedb upgrade without a token is answered 401 at once, not held until the timeout
 * (measured from the TCP handshake: p99 0.2 s idle, max 1.3 s with other suites beside).
 */
const REFUSAL_MAX_MS = 2_000;
/**
 * Live heap per pending connection, bound, for this mix. Measured ≈ 5.4 KB on average: ≈ 9 KB
 * per engine.io connection (its engine.io Socket, ws WebSocket, IncomingMessage, socket.io
 * Client and connect timer), ≈ 2.6 KB per raw TCP one (socket and http parser). A doubled
 * engine.io cost would put the mix above this.
 */
const HEAP_BYTES_PER_CONNECTION = 8 * 1024;
/**
 * Growth not proportional to the pending count: the ≤ CONCURRENCY handshakes in flight, tables
 * grown for the flood, code compiled for it (measured 1–3 MB; ≈ 1.5 MB is still there after).
 */
const HEAP_FIXED_BYTES = 4 * 1024 * 1024;
/** After the flood the live heap is back within this of its baseline (measured: 1–2 MB). */
const HEAP_AFTER_SLACK_BYTES = 4 * 1024 * 1024;
/** The peak is read this long before the first connection's timeout at the latest. */
const PEAK_LEAD_MS = 1_200;
/**
 * At least this many pending at once. 7,000–8,000 at the peak reading on a quiet machine (the
 * flood opens in ~2.5 s); 1,200–2,800 when other suites share the two cores and opening takes
 * 5–11 s, so that the first connections time out before the last are opened.
 */
const MIN_PEAK_PENDING = 500;
const METRICS_TOKEN = 'auth-idle-connections-metrics-token-0123456789';

interface Tracked {
  kind: Kind;
  /** Client clock before connect(): the server's timers all start after this. */
  startedAt: number;
  /** TCP handshake done (before the server accepted it, so before its timers start). */
  connectedAt: number | null;
  /** Established as intended: TCP connected (and partial request written), engine.io open, 401. */
  openedAt: number | null;
  closedAt: number | null;
  /** What showed it: 'engine.io open', 'HTTP 401', or the first response line on raw TCP. */
  detail: string | null;
  /** Only set in teardown: a close we caused ourselves. */
  closedByUs: boolean;
  destroy(): void;
}

interface Reading {
  heapUsed: number;
  rss: number;
  vmRss: number;
}

/** GET on a fresh connection (no keep-alive socket left behind). */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { ...headers, connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The server's memory as GET /metrics.json reports it. */
async function metrics(url: string): Promise<{ heapUsed: number; rss: number }> {
  const { status, body } = await get(`${url}/metrics.json`, { authorization: `Bearer ${METRICS_TOKEN}` });
  if (status !== 200) throw new Error(`/metrics answered ${status}: ${body}`);
  return (JSON.parse(body) as { memory: { heapUsed: number; rss: number } }).memory;
}

/** VmRSS of a process, bytes, from /proc. */
function vmRss(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

/**
 * The server process's inspector, used only to force a full GC before a heap reading, so the
 * figure is the live heap rather than live heap plus garbage V8 has not collected yet.
 */
class InspectorGc {
  private nextId = 1;
  private readonly waiting = new Map<number, () => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const reply = JSON.parse(data.toString('utf8')) as { id?: number };
      if (reply.id !== undefined) this.waiting.get(reply.id)?.();
    });
  }

  static async connect(port: number): Promise<InspectorGc> {
    const { body } = await get(`http://127.0.0.1:${port}/json/list`);
    const targets = JSON.parse(body) as Array<{ webSocketDebuggerUrl: string }>;
    const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl, { perMessageDeflate: false });
    ws.on('error', () => undefined); // a failed request below times out instead
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', () => reject(new Error('inspector connection closed')));
    });
    return new InspectorGc(ws);
  }

  /** Resolves once a full collection has run in the server process. */
  collect(): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error('HeapProfiler.collectGarbage timed out'));
      }, 10_000);
      this.waiting.set(id, () => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve();
      });
      this.ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
    });
  }

  close(): void {
    this.ws.terminate();
  }
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const spread = (xs: number[]) => {
  const s = sorted(xs);
  return { min: s[0]!, p50: pct(s, 50), p99: pct(s, 99), max: s[s.length - 1]! };
};

/** Kinds in round-robin order, `counts` of each. */
function interleave(counts: Record<Kind, number>): Kind[] {
  const left = { ...counts };
  const out: Kind[] = [];
  while (KINDS.some((k) => left[k] > 0)) {
    for (const kind of KINDS) {
      if (left[kind] > 0) {
        out.push(kind);
        left[kind]--;
      }
    }
  }
  return out;
}

describe('auth: 10,000 connections that never authenticate', function () {
  this.timeout(60_000);
  let server: ServerProcess | null = null;
  let inspector: InspectorGc | null = null;
  /** Every connection opened, for teardown. */
  const all: Tracked[] = [];
  const clients: SocketConnection[] = [];
  /** Set in teardown: stops the openers and the sampler if the test gave up. */
  let stopped = false;

  afterEach(async () => {
    stopped = true;
    for (const c of clients.splice(0)) c.close();
    for (const t of all.splice(0)) {
      if (t.closedAt === null) {
        t.closedByUs = true;
        t.destroy();
      }
    }
    inspector?.close();
    inspector = null;
    if (server) {
      const s = server;
      server = null;
      let timer: NodeJS.Timeout | undefined;
      const stoppedInTime = await Promise.race([
        s.stop().then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 10_000))),
      ]);
      clearTimeout(timer);
      if (!stoppedInTime) await s.kill();
    }
  });

  /** Opens one connection of `kind`; resolves once it is established (or already closed). */
  function open(url: string, kind: Kind, into: Tracked[]): Promise<void> {
    const { hostname, port } = new URL(url);
    return new Promise<void>((resolve) => {
      const t: Tracked = {
        kind,
        startedAt: Date.now(),
        connectedAt: null,
        openedAt: null,
        closedAt: null,
        detail: null,
        closedByUs: false,
        destroy: () => undefined,
      };
      all.push(t);
      into.push(t);
      const onClosed = () => {
        t.closedAt = Date.now();
        resolve();
      };
      const established = (detail: string | null) => {
        t.openedAt ??= Date.now();
        t.detail ??= detail;
        resolve();
      };
      const tcp = (options: NetConnectOpts): Socket => {
        const socket = connect(options);
        socket.once('connect', () => (t.connectedAt = Date.now()));
        return socket;
      };
      if (kind === 'tcpSilent' || kind === 'tcpPartial') {
        const socket = tcp({ host: hostname, port: Number(port) });
        t.destroy = () => socket.destroy();
        socket.on('connect', () => {
          // Headers never finished: no blank line.
          if (kind === 'tcpPartial')
            socket.write(`GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: ${hostname}:${port}\r\nX-Partial: yes`);
          established(null);
        });
        socket.on('data', (chunk: Buffer) => {
          t.detail ??= chunk.toString('latin1').split('\r\n')[0] ?? null;
        });
        socket.on('error', () => undefined); // a reset still ends in 'close'
        socket.on('close', onClosed);
      } else {
        const path = kind === 'engineIo' ? '/socket.io/?EIO=4&transport=websocket' : SHAREDB_WS_PATH;
        const ws = new WebSocket(`ws://${hostname}:${port}${path}`, {
          perMessageDeflate: false,
          // ws hands the HTTP path in `path`; net.connect would read it as a socket file.
          createConnection: ((options: NetConnectOpts) => tcp({ ...options, path: undefined } as NetConnectOpts)) as typeof connect,
        });
        t.destroy = () => ws.terminate();
        ws.on('message', (data: Buffer) => {
          // engine.io's open packet: `0{"sid":…}`. Nothing is ever sent back (no `40`).
          if (data.toString('utf8').startsWith('0{')) established('engine.io open');
        });
        ws.on('error', (err) => {
          const status = /Unexpected server response: (\d+)/.exec(err.message)?.[1];
          if (status) established(`HTTP ${status}`);
        });
        ws.on('close', onClosed);
      }
    });
  }

  /** Opens every connection of `kinds`, CONCURRENCY at a time; `onOpened` after each one. */
  async function flood(url: string, kinds: Kind[], into: Tracked[], onOpened: (opened: number) => void = () => undefined): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (!stopped && next < kinds.length) {
        await open(url, kinds[next++]!, into);
        onOpened(next);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }

  /** Idle connections of `list` established and not yet closed (a 401 is never pending). */
  const pendingIn = (list: Tracked[]) =>
    list.filter((t) => t.openedAt !== null && t.closedAt === null && t.kind !== 'sharedbNoToken').length;

  /** Every connection of `list` established as intended and closed by the server in time. */
  function assertClosedByServer(list: Tracked[]): void {
    for (const t of list) {
      assert.notEqual(t.openedAt, null, `${t.kind} established`);
      assert.notEqual(t.closedAt, null, `${t.kind} closed`);
      assert.equal(t.closedByUs, false);
    }
    const of = (kind: Kind) => list.filter((t) => t.kind === kind);
    assert.ok(
      of('engineIo').every((t) => t.detail === 'engine.io open'),
      'engine.io open packet on every engine.io connection',
    );
    assert.ok(
      of('sharedbNoToken').every((t) => t.detail === 'HTTP 401'),
      '/sharedb without a token refused with 401',
    );
    const refusals = spread(of('sharedbNoToken').map((t) => t.closedAt! - t.connectedAt!));
    assert.ok(refusals.max <= REFUSAL_MAX_MS, `/sharedb refusals closed at once: ${JSON.stringify(refusals)}`);
    for (const kind of IDLE_KINDS) {
      // Not before the timeout (counted from before connect(): the server's clock starts later;
      // 5 ms for timer rounding), and not long after it (counted from the TCP handshake).
      const sinceStart = spread(of(kind).map((t) => t.closedAt! - t.startedAt));
      const sinceConnect = spread(of(kind).map((t) => t.closedAt! - t.connectedAt!));
      assert.ok(sinceStart.min >= AUTH_TIMEOUT_MS - 5, `${kind}: closed by the timeout, not before: ${JSON.stringify(sinceStart)}`);
      assert.ok(
        sinceConnect.max <= AUTH_TIMEOUT_MS + CLOSE_MARGIN_MS,
        `${kind}: closed within AUTH_TIMEOUT_MS + ${CLOSE_MARGIN_MS} ms: ${JSON.stringify(sinceConnect)}`,
      );
    }
  }

  it('closes them all by the timeout, keeps the heap bounded, and still serves an authenticated client', async () => {
    stopped = false;
    const inspectPort = await freePort();
    server = await startServerProcess({
      ...AUTH_ENV,
      AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS),
      METRICS_TOKEN,
      DB_URL: 'memory:',
      // The flood stands for many clients but comes from one address: no per-IP cap.
      MAX_CONNECTIONS_PER_IP: '0',
      // Only to force a full GC before each heap reading (see InspectorGc).
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:${inspectPort}`.trim(),
    });
    const { url } = server;
    const pid = server.child.pid!;
    inspector = await InspectorGc.connect(inspectPort);
    const gc = inspector;
    /** Live heap (after a full GC) as /metrics reports it, and VmRSS. */
    const live = async (): Promise<Reading> => {
      await gc.collect();
      return { ...(await metrics(url)), vmRss: vmRss(pid) };
    };
    /** Raw readings (no forced GC), what a /metrics scraper sees, with the pending count. */
    const samples: Array<Reading & { pending: number }> = [];
    const sample = async (list: Tracked[]) => {
      const memory = await metrics(url);
      samples.push({ ...memory, vmRss: vmRss(pid), pending: pendingIn(list) });
    };

    // Warm-up: an authenticated client, and a small flood closed by the timeout, so the
    // baseline has every code path of the big one compiled.
    const warm = socketClient(url, { handshakeAuth: async () => ({ token: await testToken('warm-up') }) });
    clients.push(warm);
    const warmDoc = warm.connection.get('idle-flood', `warm-${process.pid}-${Date.now()}`);
    await subscribe(warmDoc);
    await create(warmDoc, { n: 0 });
    await submit(warmDoc, ops.add(['n'], 1));
    warm.close();
    const warmUp: Tracked[] = [];
    await flood(
      url,
      interleave({ tcpSilent: WARM_UP_EACH, tcpPartial: WARM_UP_EACH, engineIo: WARM_UP_EACH, sharedbNoToken: WARM_UP_EACH }),
      warmUp,
    );
    await waitFor(() => warmUp.every((t) => t.closedAt !== null), {
      timeoutMs: 2 * (AUTH_TIMEOUT_MS + CLOSE_MARGIN_MS),
      intervalMs: 50,
      what: 'the warm-up connections closed by the server',
    });
    assertClosedByServer(warmUp);
    const baseline = await live();

    // An authenticated client once half the flood is open: connects, creates, commits an op.
    const main: Tracked[] = [];
    const authenticatedClient = async () => {
      const token = await testToken('flood-survivor');
      const client = socketClient(url, { handshakeAuth: async () => ({ token }) });
      clients.push(client);
      const doc = client.connection.get('idle-flood', `survivor-${process.pid}-${Date.now()}`);
      await subscribe(doc);
      const connectedAt = Date.now();
      // Any state but 'connected' from here on would mean the server dropped it.
      const drops: string[] = [];
      client.connection.on('state', (state: string) => {
        if (state !== 'connected') drops.push(state);
      });
      await create(doc, { n: 0 });
      await submit(doc, ops.add(['n'], 1));
      return { connectedAt, ackedAt: Date.now(), pendingAtAck: pendingIn(main), doc, drops };
    };
    let authenticated: ReturnType<typeof authenticatedClient> | null = null;

    // The flood, sampled (raw /metrics) while it opens.
    const floodStart = Date.now();
    let opening = true;
    const sampler = (async () => {
      while (opening && !stopped) await sample(main);
    })();
    sampler.catch(() => undefined); // awaited below
    // Peak: the live heap once the flood is open, or earlier if opening is slow, so that the
    // reading is over before the first connection's timeout and the count is exact.
    const peakReading = (async () => {
      await waitFor(() => !opening || Date.now() >= floodStart + AUTH_TIMEOUT_MS - PEAK_LEAD_MS, {
        timeoutMs: AUTH_TIMEOUT_MS,
        intervalMs: 20,
        what: 'the moment to read the peak',
      });
      const before = pendingIn(main);
      const reading = await live();
      // Opened meanwhile: not counted (conservative); closed meanwhile: counted out.
      return { reading, pending: Math.min(before, pendingIn(main)), at: Date.now() };
    })();
    peakReading.catch(() => undefined); // awaited below
    await flood(url, interleave(MIX), main, (opened) => {
      if (authenticated === null && opened >= TOTAL / 2) {
        authenticated = authenticatedClient();
        authenticated.catch(() => undefined); // awaited below
      }
    });
    const openedAt = Date.now();
    opening = false;
    await sampler;
    const { reading: peak, pending: peakPending, at: peakReadAt } = await peakReading;

    // Every connection closed by the server (none by us); sampling meanwhile.
    await waitFor(
      async () => {
        await sample(main);
        return main.every((t) => t.closedAt !== null);
      },
      { timeoutMs: 2 * (AUTH_TIMEOUT_MS + CLOSE_MARGIN_MS), intervalMs: 100, what: 'every connection of the flood closed by the server' },
    );
    const allClosedAt = Date.now();
    assert.ok(authenticated, 'the authenticated client was started');
    const auth = await (authenticated as ReturnType<typeof authenticatedClient>);
    // Its connection outlived AUTH_TIMEOUT_MS (never dropped): it still commits.
    await waitFor(() => Date.now() - auth.connectedAt > AUTH_TIMEOUT_MS + 1_000, {
      timeoutMs: AUTH_TIMEOUT_MS + 2_000,
      what: 'the authenticated connection older than the timeout',
    });
    await submit(auth.doc, ops.add(['n'], 1));
    assert.equal((auth.doc.data as { n: number }).n, 2);
    assert.deepEqual(auth.drops, [], 'the authenticated connection was never dropped');

    const after = await live();

    // Figures.
    const of = (kind: Kind) => main.filter((t) => t.kind === kind);
    const heapPerConnection = (peak.heapUsed - baseline.heapUsed) / peakPending;
    const maxVmRss = Math.max(peak.vmRss, ...samples.map((x) => x.vmRss));
    const rawMax = samples.reduce((a, b) => (b.heapUsed > a.heapUsed ? b : a));
    const figures = {
      connections: main.length,
      mix: MIX,
      authTimeoutMs: AUTH_TIMEOUT_MS,
      openedInMs: openedAt - floodStart,
      peakReadAtMs: peakReadAt - floodStart,
      allClosedAtMs: allClosedAt - floodStart,
      peakPending,
      liveHeap: { baseline: mb(baseline.heapUsed), peak: mb(peak.heapUsed), after: mb(after.heapUsed) },
      liveHeapBytesPerPendingConnection: Math.round(heapPerConnection),
      rawHeapUsedMax: { heapUsed: mb(rawMax.heapUsed), pending: rawMax.pending },
      vmRss: { baseline: mb(baseline.vmRss), max: mb(maxVmRss), after: mb(after.vmRss) },
      vmRssBytesPerPendingConnection: Math.round((maxVmRss - baseline.vmRss) / peakPending),
      openMs: Object.fromEntries(KINDS.map((k) => [k, spread(of(k).map((t) => t.openedAt! - t.startedAt))])),
      // What raw TCP connections got before the close (the first response line, or nothing).
      tcpAnswers: Object.fromEntries(
        (['tcpSilent', 'tcpPartial'] as const).map((k) => [
          k,
          of(k).reduce<Record<string, number>>((acc, t) => {
            const answer = t.detail ?? '(nothing)';
            acc[answer] = (acc[answer] ?? 0) + 1;
            return acc;
          }, {}),
        ]),
      ),
      closeAfterConnectMs: Object.fromEntries(KINDS.map((k) => [k, spread(of(k).map((t) => t.closedAt! - t.connectedAt!))])),
      authenticatedClient: {
        connectedAtMs: auth.connectedAt - floodStart,
        ackedAtMs: auth.ackedAt - floodStart,
        pendingAtAck: auth.pendingAtAck,
      },
      samples: samples.length,
    };
    console.log(`      figures: ${JSON.stringify(figures)}`);

    assert.equal(main.length, TOTAL);
    assertClosedByServer(main);
    assert.ok(peakPending >= MIN_PEAK_PENDING, `${peakPending} of ${IDLE_TOTAL} idle connections pending at the peak`);
    assert.ok(
      peak.heapUsed - baseline.heapUsed < HEAP_FIXED_BYTES + HEAP_BYTES_PER_CONNECTION * peakPending,
      `live heap grew ${mb(peak.heapUsed - baseline.heapUsed)} for ${peakPending} pending connections (${Math.round(heapPerConnection)} B each)`,
    );
    assert.ok(
      after.heapUsed <= baseline.heapUsed + HEAP_AFTER_SLACK_BYTES,
      `live heap after ${mb(after.heapUsed)}, baseline ${mb(baseline.heapUsed)}`,
    );
    assert.ok(auth.pendingAtAck >= MIN_PEAK_PENDING, `authenticated op acknowledged with ${auth.pendingAtAck} idle connections pending`);
  });
});
