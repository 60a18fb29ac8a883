import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url));

/** `source` runs server/main.ts through tsx; `bin` runs the package bin (the built bundle). */
export type ServerEntry = 'source' | 'bin';

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Every JSON log line the process printed so far (pino objects). */
  readonly logs: Array<Record<string, unknown>>;
  /** stdout lines that were not JSON (every log line should be). */
  readonly nonJson: string[];
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** SIGKILL: no shutdown code runs. */
  kill(): Promise<void>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Runs `server/main.ts` in its own Node process (through tsx) on a free port, and resolves
 * once it logs the URL it listens on. Used for tests that kill or restart instances.
 */
export async function startServerProcess(
  env: Record<string, string>,
  { timeoutMs = 20_000, entry = 'source', args = [] }: { timeoutMs?: number; entry?: ServerEntry; args?: string[] } = {},
): Promise<ServerProcess> {
  const command = entry === 'bin' ? [BIN, 'serve', ...args] : ['--import', 'tsx', MAIN, 'serve', ...args];
  const child = spawn(process.execPath, command, {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const nonJson: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout! });
  const exited = once(child, 'exit');
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server process did not start in ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    lines.on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        nonJson.push(line);
        return;
      }
      logs.push(entry);
      if (entry.msg === 'tandem listening' && typeof entry.url === 'string') {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server process exited with ${code} before listening: ${stderr}`));
    });
  });
  const waitExit = async (): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const [code] = (await exited) as [number | null];
    return code;
  };
  return {
    child,
    url,
    logs,
    nonJson,
    stderr: () => stderr,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await waitExit();
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return waitExit();
    },
  };
}

/**
 * Mocha hooks for a describe block whose tests each get a server process on a fresh SQLite
 * file (plus `env`): started before each test; after it the test's closers run (last
 * first), then the process stops and its folder goes.
 */
export function useServerProcessPerTest(env: Record<string, string> = {}): {
  readonly server: ServerProcess;
  readonly closers: Array<() => Promise<void>>;
} {
  let current: ServerProcess | null = null;
  let dir = '';
  const closers: Array<() => Promise<void>> = [];
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-process-'));
    current = await startServerProcess({ DB_URL: `sqlite:${join(dir, 'tandem.db')}`, ...env });
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await current?.stop();
    current = null;
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get server(): ServerProcess {
      if (!current) throw new Error('useServerProcessPerTest: no server outside a test');
      return current;
    },
    closers,
  };
}
