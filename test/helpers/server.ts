import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TandemServer } from '../../server/app.js';
import { loadConfig, type ConfigSource } from '../../server/config.js';
import { createLogger } from '../../server/ops/logger.js';

export interface TestServer extends TandemServer {
  /** Temp folder holding this server's SQLite file (if any); removed on close. */
  readonly dir: string;
}

/** An in-process server on a free port with a fresh SQLite file (or `env.DB_URL`). */
export async function startTestServer(env: ConfigSource = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-test-'));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DB_URL: `sqlite:${join(dir, 'tandem.db')}`,
    SHUTDOWN_TIMEOUT_MS: '2000',
    ...env,
  });
  const server = await startServer(config, createLogger(process.env.LOG_LEVEL ?? 'silent'));
  return {
    ...server,
    dir,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
