import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type EmbeddingOptions, type TandemServer } from '../../server/app.js';
import { loadConfig, type ConfigSource } from '../../server/config.js';
import { createLogger } from '../../server/ops/logger.js';

export interface TestServer extends TandemServer {
  /** Temp folder holding this server's SQLite file (if any); removed on close. */
  readonly dir: string;
}

/**
 * An in-process server on a free port with a fresh SQLite file (or `env.DB_URL`), started as
 * an application embedding Tandem starts it (`embedding`: e.g. an access hook).
 */
export async function startTestServer(env: ConfigSource = {}, embedding: EmbeddingOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-test-'));
  let server: TandemServer;
  try {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DB_URL: `sqlite:${join(dir, 'tandem.db')}`,
      SHUTDOWN_TIMEOUT_MS: '2000',
      ...env,
    });
    server = await startServer(config, createLogger(process.env.LOG_LEVEL ?? 'silent'), embedding);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...server,
    dir,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What `useServerPerTest` gives a describe block. */
export interface ServerPerTest {
  /** This test's server (throws outside a test). */
  readonly server: TestServer;
  /** Close functions the test registers (its clients); run last-first before the server closes. */
  readonly closers: Array<() => Promise<void>>;
}

/**
 * Mocha hooks for a describe block whose tests each get a fresh server: started before each
 * test, and after it the test's closers run, then the server closes — also when it failed.
 * More setup on the server goes in a `beforeEach` registered after this call.
 */
export function useServerPerTest(env: ConfigSource = {}): ServerPerTest {
  let current: TestServer | null = null;
  const closers: Array<() => Promise<void>> = [];
  beforeEach(async () => {
    current = await startTestServer(env);
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await current?.close();
    current = null;
  });
  return {
    get server(): TestServer {
      if (!current) throw new Error('useServerPerTest: no server outside a test');
      return current;
    },
    closers,
  };
}
