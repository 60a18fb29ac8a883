/** Starts and drives a server host process (load/bench/server-host.ts) from the benchmark. */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerProbe } from '../server-probe.js';
import { dropSchema, freshSchema, type BenchSchema } from './bench-postgres.js';
import type { FromHost, HostStats, ServerKind, ToHost } from './host-protocol.js';

export interface HostedServer {
  readonly kind: ServerKind;
  /** Tandem: http://… (socket.io); stock: ws://… */
  readonly url: string;
  /** ShareDB's protocol over a plain WebSocket (Tandem: /sharedb; stock: its only endpoint). */
  readonly sharedbWsUrl: string;
  readonly pid: number;
  /** The server's AUTH_JWT_SECRET when it runs with authentication, else null. */
  readonly jwtSecret: string | null;
  stats(): Promise<HostStats>;
  /** Heap after forced garbage collection in the server process. */
  gcHeap(): Promise<{ heapUsed: number; rss: number }>;
  /** Writes a V8 heap snapshot of the server process (after forced GC); returns its path. */
  heapSnapshot(path: string): Promise<string>;
  /** Server figures for runLoad, from the host's counters. */
  probe(): ServerProbe;
  close(): Promise<void>;
}

const HOST = fileURLToPath(new URL('./server-host.ts', import.meta.url));

let bundleChecked = false;
/** The host runs Tandem's bundle (server-host.ts): rebuilt first, once per process, when a source is newer. */
function ensureBundle(): void {
  if (bundleChecked) return;
  execFileSync(process.execPath, [fileURLToPath(new URL('../../scripts/build.mjs', import.meta.url)), '--if-needed'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  bundleChecked = true;
}

/**
 * Which store both sides use: our SQLite adapter (default), ShareDB's in-memory DB, or our
 * PostgreSQL adapter (PG_BENCH_URL, a fresh schema per server, dropped when it closes).
 */
export type BenchStore = 'sqlite' | 'memory' | 'postgres';

export async function startHostedServer(
  kind: ServerKind,
  opts: {
    cpuProfDir?: string;
    store?: BenchStore;
    auth?: boolean;
    env?: Readonly<Record<string, string>>;
    /** Node or V8 options for the server process (`--server-node-arg`), e.g. `--trace-gc`. */
    nodeArgs?: readonly string[];
  } = {},
): Promise<HostedServer> {
  if (kind === 'tandem') ensureBundle();
  const dir = mkdtempSync(join(tmpdir(), `tandem-bench-${kind}-`));
  // Only a side asked to run with authentication gets a secret (never one from the environment).
  // A workload's own settings (W6's op and frame limits) win over the bench's environment.
  const env = { ...process.env, ...opts.env };
  delete env.AUTH_JWT_SECRET;
  const jwtSecret = opts.auth ? randomBytes(32).toString('base64url') : null;
  if (jwtSecret) env.AUTH_JWT_SECRET = jwtSecret;
  const execArgv = ['--import', import.meta.resolve('tsx'), '--expose-gc'];
  // One directory per server: Node writes a profile per thread (main, and tsx's loader).
  if (opts.cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(opts.cpuProfDir, `${kind}-${Date.now()}`)}`);
  execArgv.push(...(opts.nodeArgs ?? []));
  const schema: BenchSchema | null = opts.store === 'postgres' ? freshSchema() : null;
  const dbUrl = schema ? schema.url : opts.store === 'memory' ? 'memory:' : `sqlite:${join(dir, 'bench.db')}`;
  const child: ChildProcess = fork(HOST, [kind, dbUrl], { execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  /** What the server leaves outside its process: its folder, and its schema. */
  const cleanUp = async () => {
    rmSync(dir, { recursive: true, force: true });
    if (schema) await dropSchema(schema);
  };

  const waiters = new Map<FromHost['type'], Array<(m: FromHost) => void>>();
  let fatal: string | null = null;
  child.on('message', (m: FromHost) => {
    if (m.type === 'fatal') fatal = m.message;
    const list = waiters.get(m.type) ?? [];
    waiters.delete(m.type);
    for (const w of list) w(m);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const request = <T extends FromHost['type']>(
    message: ToHost | null,
    reply: T,
    timeoutMs = 60_000,
  ): Promise<Extract<FromHost, { type: T }>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${kind} server host: no "${reply}" within ${timeoutMs} ms${fatal ? `: ${fatal}` : ''}`)),
        timeoutMs,
      );
      const list = waiters.get(reply) ?? [];
      list.push((m) => {
        clearTimeout(timer);
        resolve(m as Extract<FromHost, { type: T }>);
      });
      waiters.set(reply, list);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${kind} server host exited${fatal ? `: ${fatal}` : ''}`));
      });
      if (message) child.send(message);
    });

  let listening: Extract<FromHost, { type: 'listening' }>;
  try {
    listening = await request(null, 'listening', 60_000);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await cleanUp();
    throw err;
  }
  const stats = async () => (await request({ type: 'stats' }, 'stats', 10_000)).stats;
  return {
    kind,
    url: listening.url,
    sharedbWsUrl: listening.sharedbWsUrl,
    pid: child.pid ?? -1,
    jwtSecret,
    stats,
    gcHeap: async () => {
      const m = await request({ type: 'gc-heap' }, 'gc-heap', 60_000);
      return { heapUsed: m.heapUsed, rss: m.rss };
    },
    heapSnapshot: async (path) => (await request({ type: 'heap-snapshot', path }, 'heap-snapshot', 120_000)).path,
    probe: () => ({
      source: `${kind} server host process (IPC)`,
      sample: async () => {
        const s = await stats();
        return {
          commits: s.commits,
          commitRetries: s.commitRetries,
          rejected: s.rejected,
          rssBytes: s.rss,
          heapUsedBytes: s.heapUsed,
          cpuMicros: s.cpuMicros,
          atMs: s.atMs,
          loopDelayP99Ms: s.loopDelayP99Ms,
        };
      },
    }),
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        await request({ type: 'close' }, 'closed', 30_000).catch(() => child.kill('SIGKILL'));
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      await cleanUp();
    },
  };
}
