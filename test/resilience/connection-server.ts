/**
 * The server process the connection attacks run against, and what the tests read from it.
 * Its V8 heap is capped, so its RSS follows what it keeps rather than garbage V8 has not
 * collected yet: a server that kept what an attack sent it would pass the RSS bound or run
 * out of heap (and stop answering /healthz).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { Bystanders, httpGet, rssOf } from './connection-watch.js';

export const HEAP_CAP_MB = 256;
/**
 * RSS bound, above the server's RSS once set up and before the first attack. Measured
 * growth over the attacks: at most ~70 MiB (the drops, parsing 1 MB frames, 20,000
 * subscriptions). Without the bounds the same attacks queue 150–400 MB each.
 */
export const RSS_HEADROOM_BYTES = 128 * 1024 * 1024;

export const DROP_MESSAGE = 'client dropped: not reading';

/** A pino log line of the server process. */
export type Log = Record<string, unknown>;

export interface AttackedServer {
  server: ServerProcess;
  pid: number;
  /** SIGTERM, wait, and remove its SQLite folder. */
  stop(): Promise<void>;
}

/** Starts a server process on a fresh SQLite file, logging at info (tests read the lines). */
export async function startAttackedServer(env: Record<string, string>): Promise<AttackedServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-resilience-'));
  // Bystanders commit steadily from one address: rate limits are not what these tests are about.
  const server = await startServerProcess({
    DB_URL: `sqlite:${join(dir, 'tandem.db')}`,
    LOG_LEVEL: 'info',
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=${HEAP_CAP_MB}`.trim(),
    OPS_PER_MINUTE: '1000000',
    CREATES_PER_MINUTE: '1000000',
    QUERIES_PER_MINUTE: '1000000',
    ...env,
  }).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  return {
    server,
    pid: server.child.pid!,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function logsSince(server: ServerProcess, marker: number, match: (log: Log) => boolean): Log[] {
  return server.logs.slice(marker).filter(match);
}

/** The line the server logs when it drops a client that does not read, from `ip`. */
export function isDrop(log: Log, ip: string): boolean {
  return log.msg === DROP_MESSAGE && log.ip === ip;
}

/** One figure of GET /metrics.json. */
export async function metric(url: string, name: string): Promise<number> {
  const answer = await httpGet(`${url}/metrics.json`);
  return (JSON.parse(answer.body) as Record<string, number>)[name]!;
}

/** A describe block's attacked server, with bystanders on it (filled in by `before`). */
export interface AttackFixture {
  readonly server: ServerProcess;
  readonly pid: number;
  /** RSS_HEADROOM_BYTES above the server's RSS once set up (see `measureBaseline`). */
  readonly rssLimit: number;
  readonly bystanders: Bystanders;
  /** Sets `rssLimit` from the RSS now: call after more setup (documents) in a later `before`. */
  measureBaseline(): void;
}

/**
 * Mocha hooks: one attacked server process for the tests of a describe block, started
 * with `env` before them, with bystanders committing, and stopped after them.
 */
export function useAttackedServer(name: string, env: Record<string, string>): AttackFixture {
  let attacked: AttackedServer | null = null;
  let bystanders: Bystanders | null = null;
  let rssLimit = 0;
  const fixture: AttackFixture = {
    get server() {
      if (!attacked) throw new Error('useAttackedServer: no server outside its describe block');
      return attacked.server;
    },
    get pid() {
      return fixture.server.child.pid!;
    },
    get rssLimit() {
      return rssLimit;
    },
    get bystanders() {
      if (!bystanders) throw new Error('useAttackedServer: no bystanders outside its describe block');
      return bystanders;
    },
    measureBaseline() {
      rssLimit = rssOf(fixture.pid) + RSS_HEADROOM_BYTES;
    },
  };
  before(async () => {
    attacked = await startAttackedServer(env);
    bystanders = await Bystanders.start(attacked.server.url, name);
    await bystanders.commitRound();
    fixture.measureBaseline();
  });
  after(async () => {
    await bystanders?.close();
    await attacked?.stop();
    bystanders = null;
    attacked = null;
  });
  return fixture;
}
