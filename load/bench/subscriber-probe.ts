/**
 * Starts and drives W6's subscriber process (load/bench/subscriber-process.ts): one client
 * subscribed to one document in a process of its own, whose CPU per remote op is the client
 * library's cost of receiving an op on a document of that size.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromSubscriber, SubscriberClient } from './subscriber-protocol.js';

const ENTRY = fileURLToPath(new URL('./subscriber-process.ts', import.meta.url));

export interface SubscriberWindow {
  cpuMicros: number;
  remoteOps: number;
  wallMs: number;
  /** Length of the subscriber's text at the end: it followed the writer. */
  textLength: number;
}

export interface SubscriberProbe {
  readonly pid: number;
  /** Resolves once the process has loaded its modules (start-up is not measured). */
  loaded(): Promise<void>;
  /** Subscribes (loading the document, not measured); resolves with its text's length. */
  subscribe(request: { client: SubscriberClient; url: string; collection: string; id: string; token: string | null }): Promise<number>;
  start(): Promise<void>;
  stop(): Promise<SubscriberWindow>;
  /** Closes the client and ends the process (killed if it does not end by itself). */
  close(): Promise<void>;
}

export function startSubscriber(): SubscriberProbe {
  const child: ChildProcess = fork(ENTRY, [], {
    execArgv: ['--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages: FromSubscriber[] = [];
  const waiters: Array<() => void> = [];
  let fatal: string | null = null;
  child.on('message', (m: FromSubscriber) => {
    if (m.type === 'fatal') fatal = m.message;
    messages.push(m);
    for (const w of waiters.splice(0)) w();
  });
  // A send to a process that has gone emits 'error'; without a listener that would end the bench.
  child.on('error', (err) => {
    fatal ??= err.message;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => {
    for (const w of waiters.splice(0)) w();
  });

  /** The next message of type `type` (earlier ones of other types are dropped). */
  const next = <T extends FromSubscriber['type']>(type: T, timeoutMs: number): Promise<Extract<FromSubscriber, { type: T }>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`W6 subscriber: no "${type}" within ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        const i = messages.findIndex((m) => m.type === type);
        if (i >= 0) {
          clearTimeout(timer);
          resolve(messages.splice(0, i + 1)[i] as Extract<FromSubscriber, { type: T }>);
        } else if (fatal !== null || child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(timer);
          reject(new Error(`W6 subscriber failed: ${fatal ?? 'exited'}`));
        } else {
          waiters.push(check);
        }
      };
      check();
    });

  return {
    pid: child.pid ?? -1,
    loaded: async () => {
      await next('loaded', 60_000);
    },
    subscribe: async (request) => {
      child.send({ type: 'subscribe', ...request });
      return (await next('subscribed', 60_000)).textLength;
    },
    start: async () => {
      child.send({ type: 'start' });
      await next('started', 10_000);
    },
    stop: async () => {
      child.send({ type: 'stop' });
      const m = await next('stopped', 10_000);
      return { cpuMicros: m.cpuMicros, remoteOps: m.remoteOps, wallMs: m.wallMs, textLength: m.textLength };
    },
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        if (child.connected) child.send({ type: 'close' });
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
