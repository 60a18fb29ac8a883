/**
 * Forks the load generator processes and talks to them: send a message to all, wait for one
 * reply from each (with a deadline), kill them all on failure.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TandemErrorCode } from '../client/protocol.js';
import type { FromWorker, ToWorker } from './ipc.js';

export class LoadRunError extends Error {
  readonly code = TandemErrorCode.LOAD_FAILED;
}

/** The worker entry: load/worker.ts from source (run through tsx), or the bundled file. */
function workerEntry(): { path: string; execArgv: string[] } {
  const source = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const inherited = process.execArgv.filter((a) => !a.startsWith('--cpu-prof') && !a.startsWith('--inspect'));
  if (existsSync(source)) {
    const hasTsx = inherited.some((a) => a.includes('tsx'));
    return { path: source, execArgv: hasTsx ? inherited : [...inherited, '--import', import.meta.resolve('tsx')] };
  }
  return { path: fileURLToPath(new URL('./load-worker.js', import.meta.url)), execArgv: inherited };
}

type Listener = (worker: number, message: FromWorker) => void;

export class WorkerPool {
  private readonly children: ChildProcess[] = [];
  private readonly listeners = new Set<Listener>();
  private failure: LoadRunError | null = null;
  private readonly failureWaiters = new Set<(err: LoadRunError) => void>();
  /** Set by close(): worker exits from then on are expected. */
  private closing = false;

  constructor(count: number, extraExecArgv: readonly string[] = []) {
    const entry = workerEntry();
    for (let i = 0; i < count; i++) {
      const child = fork(entry.path, [], {
        execArgv: [...entry.execArgv, ...extraExecArgv],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      child.on('message', (message: FromWorker) => {
        if (message.type === 'fatal') this.fail(`worker ${i} failed: ${message.message}`);
        for (const l of this.listeners) l(i, message);
      });
      child.on('exit', (code, signal) => {
        if (!this.closing) this.fail(`worker ${i} exited (${signal ?? code}) during the run`);
      });
      this.children.push(child);
    }
  }

  get size(): number {
    return this.children.length;
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid ?? -1);
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  send(worker: number, message: ToWorker): void {
    const child = this.children[worker]!;
    if (child.connected) child.send(message);
  }

  broadcast(message: ToWorker | ((worker: number) => ToWorker)): void {
    for (let i = 0; i < this.children.length; i++) this.send(i, typeof message === 'function' ? message(i) : message);
  }

  /** Sends `message` to all workers and resolves with each one's reply of type `reply`. */
  async request<T extends FromWorker['type']>(
    message: ToWorker | ((worker: number) => ToWorker),
    reply: T,
    timeoutMs: number,
  ): Promise<Array<Extract<FromWorker, { type: T }>>> {
    const replies = new Array<Extract<FromWorker, { type: T }>>(this.children.length);
    let remaining = this.children.length;
    let off = () => {};
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onFail: (err: LoadRunError) => void = () => {};
    try {
      return await new Promise((resolve, reject) => {
        if (this.failure) return reject(this.failure);
        onFail = reject;
        this.failureWaiters.add(onFail);
        timer = setTimeout(() => reject(new LoadRunError(`workers did not answer with "${reply}" within ${timeoutMs} ms`)), timeoutMs);
        off = this.on((worker, m) => {
          if (m.type !== reply || replies[worker]) return;
          replies[worker] = m as Extract<FromWorker, { type: T }>;
          if (--remaining === 0) resolve(replies);
        });
        this.broadcast(message);
      });
    } finally {
      off();
      clearTimeout(timer);
      this.failureWaiters.delete(onFail);
    }
  }

  /** Rejects pending and future requests with this failure. */
  fail(message: string): void {
    if (this.failure) return;
    this.failure = new LoadRunError(message);
    for (const waiter of this.failureWaiters) waiter(this.failure);
  }

  get failed(): LoadRunError | null {
    return this.failure;
  }

  /** Asks workers to close, then kills any still running after `graceMs`. */
  async close(graceMs = 5_000): Promise<void> {
    this.closing = true;
    const exits = this.children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
        }),
    );
    this.broadcast({ type: 'close' });
    const timer = setTimeout(() => {
      for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, graceMs);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}
