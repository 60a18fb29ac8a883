import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { commandAvailable, freeRestartablePort } from './system.js';
import { waitFor } from './wait.js';

/** True when a `redis-server` binary is on PATH. */
export function redisServerAvailable(): boolean {
  return commandAvailable('redis-server', ['--version']);
}

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SHUTDOWN NOSAVE) and waits until the port refuses. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Stops it and removes its files. */
  destroy(): Promise<void>;
}

/** Our own redis-server on a free port (never the machine's 6379), stoppable and restartable. */
export async function startTestRedis(): Promise<TestRedis> {
  // Outside the ephemeral range: clients keep dialling the port while the server is down.
  const port = await freeRestartablePort();
  const dir = mkdtempSync(join(tmpdir(), 'tandem-redis-'));
  const pidfile = join(dir, 'redis.pid');
  const logfile = join(dir, 'redis.log');
  // A daemonized redis-server that cannot start says why only in its log.
  const logTail = () =>
    existsSync(logfile) ? `; its log ends: ${readFileSync(logfile, 'utf8').trim().split('\n').slice(-3).join(' | ')}` : '';
  const url = `redis://127.0.0.1:${port}`;
  const ping = async (): Promise<boolean> => {
    const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      return true;
    } catch {
      return false;
    } finally {
      if (client.isOpen) client.destroy();
    }
  };
  const start = async () => {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'yes',
        '--pidfile',
        pidfile,
        '--dir',
        dir,
        '--logfile',
        logfile,
      ],
      { stdio: 'ignore' },
    );
    await new Promise((resolve) => child.once('exit', resolve));
    await waitFor(ping, { timeoutMs: 10_000, what: () => `redis on ${port}${logTail()}` });
  };
  const stop = async () => {
    if (existsSync(pidfile)) {
      const pid = Number(readFileSync(pidfile, 'utf8').trim());
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitFor(async () => !(await ping()), { timeoutMs: 10_000, what: `redis on ${port} to stop` });
    rmSync(pidfile, { force: true });
  };
  await start();
  return {
    url,
    port,
    start,
    stop,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
