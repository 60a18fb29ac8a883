import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnJsonLines } from './json-lines-process.js';
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
  const {
    child,
    events,
    stderr: stderrText,
    gone,
    exited: exit,
  } = spawnJsonLines(['--import', 'tsx', SCRIPT], {
    env: { ...process.env, ...env },
  });
  return {
    child,
    events,
    next: async (name, timeoutMs = 20_000) => {
      const found = await waitFor(
        () => {
          const fatal = events.find((e) => e.event === 'fatal');
          if (fatal) throw new Error(`client process failed: ${String(fatal.message)}`);
          const found = events.find((e) => e.event === name);
          if (!found && gone()) throw new Error(`client process exited (${child.exitCode}) before "${name}": ${stderrText()}`);
          return found;
        },
        { timeoutMs, what: `client process event "${name}"` },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nstderr: ${stderrText()}`);
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
