import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

const SCRIPT = fileURLToPath(new URL('./sdk-offline-client.ts', import.meta.url));

export interface ClientProcess {
  readonly child: ChildProcess;
  /** Every JSON line printed so far. */
  readonly events: Array<Record<string, unknown>>;
  /** Resolves with the first event named `name` (fails on a 'fatal' event or exit). */
  next(name: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  send(line: string): void;
  kill(): Promise<void>;
  exited(): Promise<number | null>;
}

/** Spawns `sdk-offline-client.ts` in its own Node process (see that file for `env`). */
export function startClientProcess(env: Record<string, string>): ClientProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const events: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not ours (a library's console output)
    }
  });
  const exit = once(child, 'exit');
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    events,
    next: async (name, timeoutMs = 20_000) => {
      const found = await waitFor(
        () => {
          const fatal = events.find((e) => e.event === 'fatal');
          if (fatal) throw new Error(`client process failed: ${String(fatal.message)}`);
          const found = events.find((e) => e.event === name);
          if (!found && gone()) throw new Error(`client process exited (${child.exitCode}) before "${name}": ${stderr}`);
          return found;
        },
        { timeoutMs, what: `client process event "${name}"` },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nstderr: ${stderr}`);
      });
      // waitFor resolves only with a truthy value.
      return found!;
    },
    send: (line) => child.stdin!.write(`${line}\n`),
    kill: async () => {
      if (!gone()) child.kill('SIGKILL');
      if (!gone()) await exit;
    },
    exited: async () => {
      if (!gone()) await exit;
      return child.exitCode;
    },
  };
}
