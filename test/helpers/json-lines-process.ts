import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** A child process that reports by printing one JSON object per line (tests' helper processes). */
export interface JsonLinesProcess {
  readonly child: ChildProcess;
  /** Every JSON line printed so far (other output is ignored). */
  readonly events: Array<Record<string, unknown>>;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** True once the process exited or was killed. */
  gone(): boolean;
  /** Resolves when the process exits. */
  readonly exited: Promise<unknown>;
}

/** Spawns `node <args>` with piped stdio and collects the JSON lines it prints. */
export function spawnJsonLines(args: string[], options: SpawnOptions = {}): JsonLinesProcess {
  const child = spawn(process.execPath, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
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
  return {
    child,
    events,
    stderr: () => stderr,
    gone: () => child.exitCode !== null || child.signalCode !== null,
    exited: once(child, 'exit'),
  };
}
