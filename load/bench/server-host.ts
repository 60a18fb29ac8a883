/**
 * A server under benchmark, in its own process (so it never shares an event loop with the
 * load generators): `server-host.ts tandem|stock <DB_URL>` (PG_POOL_MAX applies to both).
 * Tandem runs through its real composition (`startServer` from the bundle of server/index.ts,
 * as `tandem serve` does from its own bundle); stock is load/bench/stock-server.ts. Both are
 * counted the same way (ShareDB's 'submitRequestEnd'), and answer memory questions with GC
 * forced (the bench starts this with --expose-gc).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { SHAREDB_WS_PATH } from '../../client/protocol.js';
import type * as TandemServerApi from '../../server/index.js';
import type ShareDB from 'sharedb';
import type { FromHost, HostStats, ServerKind, ToHost } from './host-protocol.js';

/**
 * Tandem as it ships: the esbuild bundle of the embedding API (hosted-server.ts rebuilds it
 * when a source is newer), not the TypeScript sources through tsx, whose name-keeping
 * wrappers (`__name`) alone took about 1 % of the server's time in a W1 profile. tsx leaves
 * a `.js` file as it is.
 */
async function tandemApi(): Promise<typeof TandemServerApi> {
  return (await import(new URL('../../dist/server.js', import.meta.url).href)) as typeof TandemServerApi;
}

function send(message: FromHost): void {
  process.send?.(message);
}

async function forcedGcHeap(): Promise<{ heapUsed: number; rss: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('server host needs --expose-gc');
  // Several passes with turns of the event loop between them let weak refs and finalizers
  // release what the previous pass freed.
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss };
}

/** Polls /readyz (the store's ping, PostgreSQL's migration included) until it answers 200. */
async function waitReady(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${url}/readyz`).catch(() => null);
    if (res?.ok) return;
    if (Date.now() > deadline) throw new Error(`Tandem not ready within ${timeoutMs} ms (last /readyz: ${res?.status ?? 'no answer'})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main(): Promise<void> {
  const [kind, dbUrl] = process.argv.slice(2) as [ServerKind, string];
  let backend: ShareDB;
  let url: string;
  let sharedbWsUrl: string;
  let close: () => Promise<void>;
  if (kind === 'tandem') {
    const { startServer, loadConfig, createLogger } = await tandemApi();
    // SQLITE_GROUP_COMMIT and SQLITE_CHECKPOINTS pass through, to measure what each brings;
    // AUTH_JWT_SECRET is set by the benchmark for a side with authentication (hosted-server.ts).
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DB_URL: dbUrl,
      SHUTDOWN_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'warn',
      SQLITE_GROUP_COMMIT: process.env.SQLITE_GROUP_COMMIT,
      SQLITE_CHECKPOINTS: process.env.SQLITE_CHECKPOINTS,
      AUTH_JWT_SECRET: process.env.AUTH_JWT_SECRET,
      PG_POOL_MAX: process.env.PG_POOL_MAX,
      // Every simulated user connects from 127.0.0.1, so the per-address cap (default 1,000)
      // would cap the bench itself: W4 has 10,000 clients, and W1's 1,000 leave no headroom
      // (on a loaded machine W1 clients were refused TANDEM_TOO_MANY_CONNECTIONS and never
      // came online). Off, as behind a proxy; MAX_CONNECTIONS_PER_IP set for the bench wins.
      MAX_CONNECTIONS_PER_IP: process.env.MAX_CONNECTIONS_PER_IP ?? '0',
      // W6 creates documents of 1 MB (one create op) and types into each as fast as one op
      // in flight allows, past the per-connection default of 6,000 ops a minute.
      MAX_OP_BYTES: process.env.MAX_OP_BYTES,
      MAX_FRAME_BYTES: process.env.MAX_FRAME_BYTES,
      MAX_DOC_BYTES: process.env.MAX_DOC_BYTES,
      OPS_PER_MINUTE: process.env.OPS_PER_MINUTE,
    });
    const server = await startServer(config, createLogger('warn'));
    backend = server.backend;
    url = server.url;
    // Listening is not ready: as the stock side, report only once the store answers.
    await waitReady(url);
    sharedbWsUrl = url.replace(/^http/, 'ws') + SHAREDB_WS_PATH;
    close = () => server.close();
  } else if (kind === 'stock') {
    // The sources' config parser: the stock side never loads Tandem's bundle (its json1 type
    // is the one stock-server.ts registers).
    const { loadConfig } = await import('../../server/config.js');
    const { startStockServer } = await import('./stock-server.js');
    const server = await startStockServer(dbUrl, { pgPoolMax: loadConfig({ PG_POOL_MAX: process.env.PG_POOL_MAX }).pgPoolMax });
    backend = server.backend;
    url = sharedbWsUrl = server.url;
    close = () => server.close();
  } else {
    throw new Error(`unknown server kind "${String(kind)}"`);
  }

  const stats = { commits: 0, rejected: 0, commitRetries: 0 };
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  // Emitted by ShareDB's Backend.submit for every submit, after its retries.
  backend.on('submitRequestEnd', (error: unknown, request: { retries?: number }) => {
    if (error) stats.rejected++;
    else stats.commits++;
    stats.commitRetries += request.retries ?? 0;
  });

  process.on('message', (message: ToHost) => {
    void (async () => {
      if (message.type === 'stats') {
        const m = process.memoryUsage();
        const cpu = process.cpuUsage();
        const atMs = performance.timeOrigin + performance.now();
        const loopDelayP99Ms = loop.count > 0 ? loop.percentile(99) / 1e6 : 0;
        loop.reset();
        const s: HostStats = { ...stats, rss: m.rss, heapUsed: m.heapUsed, cpuMicros: cpu.user + cpu.system, atMs, loopDelayP99Ms };
        send({ type: 'stats', stats: s });
      } else if (message.type === 'gc-heap') {
        send({ type: 'gc-heap', ...(await forcedGcHeap()) });
      } else if (message.type === 'heap-snapshot') {
        await forcedGcHeap();
        send({ type: 'heap-snapshot', path: writeHeapSnapshot(message.path) });
      } else if (message.type === 'close') {
        await close();
        send({ type: 'closed' });
        setTimeout(() => process.exit(0), 100);
      }
    })().catch((err: unknown) => send({ type: 'fatal', message: String(err) }));
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'listening', url, sharedbWsUrl });
}

main().catch((err: unknown) => {
  send({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  setTimeout(() => process.exit(1), 100);
});
