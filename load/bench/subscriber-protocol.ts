/** IPC between W6 and its subscriber process (load/bench/subscriber-process.ts). */

/**
 * Which client library subscribes: Tandem's SDK (`connect` → DocHandle, over socket.io), or
 * stock ShareDB's client (`Connection` + `Doc`, over a plain WebSocket).
 */
export type SubscriberClient = 'sdk' | 'stock';

export type ToSubscriber =
  | { type: 'subscribe'; client: SubscriberClient; url: string; collection: string; id: string; token: string | null }
  /** Starts the measured window: CPU time and remote ops from now on. */
  | { type: 'start' }
  | { type: 'stop' }
  | { type: 'close' };

export type FromSubscriber =
  /** Modules loaded; ready for 'subscribe'. */
  | { type: 'loaded' }
  | { type: 'subscribed'; textLength: number }
  | { type: 'started' }
  /** The window: process.cpuUsage() user + system, remote ops applied, wall time. */
  | { type: 'stopped'; cpuMicros: number; remoteOps: number; wallMs: number; textLength: number }
  | { type: 'closed' }
  | { type: 'fatal'; message: string };
