/**
 * W6's subscriber, in a process of its own so that the CPU it reads with process.cpuUsage()
 * is only the client library's: one client subscribed to one document, counting the remote
 * ops it applies while a writer elsewhere types into that document. Driven over IPC by
 * load/bench/subscriber-probe.ts (messages in subscriber-protocol.ts).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { Connection } from 'sharedb/lib/client/index.js';
import { connect } from '../../client/index.js';
import { registerTandemTypes } from '../../ot-types/index.js';
import type { FromSubscriber, SubscriberClient, ToSubscriber } from './subscriber-protocol.js';

interface Subscription {
  /** The subscribed document's text, as the client holds it. */
  text(): string;
  close(): Promise<void>;
}

function send(message: FromSubscriber): void {
  process.send?.(message);
}

let remoteOps = 0;

function textOf(data: unknown): string {
  const text = (data as { text?: unknown } | undefined)?.text;
  return typeof text === 'string' ? text : '';
}

/** Tandem's SDK as an application uses it: connect(), client.doc(), 'op' events. */
async function subscribeSdk(url: string, collection: string, id: string, token: string | null): Promise<Subscription> {
  const client = connect({ url, getToken: token === null ? undefined : async () => token });
  const handle = client.doc(collection, id);
  await handle.ready;
  handle.on('op', (_op, meta) => {
    if (meta.source === 'remote') remoteOps++;
  });
  return { text: () => textOf(handle.data), close: () => client.close() };
}

/** Stock ShareDB's client as its README sets it up: a Connection over a ws WebSocket. */
async function subscribeStock(url: string, collection: string, id: string, token: string | null): Promise<Subscription> {
  // The same OT type as the server's and the SDK's (Tandem's conflict-resolving json1).
  registerTandemTypes();
  const address = new URL(url);
  if (token !== null) address.searchParams.set('token', token);
  const socket = new WebSocket(address);
  socket.on('error', () => {
    // ShareDB sees the error through onerror; this listener only keeps ws from throwing.
  });
  // ws's WebSocket is what ShareDB's README passes; its typings differ from the DOM's.
  const connection = new Connection(socket as unknown as ConstructorParameters<typeof Connection>[0]);
  const doc = connection.get(collection, id);
  await new Promise<void>((resolve, reject) => doc.subscribe((err) => (err ? reject(err) : resolve())));
  doc.on('op', (_op, source) => {
    if (source === false) remoteOps++;
  });
  return {
    text: () => textOf(doc.data),
    close: async () => connection.close(),
  };
}

async function subscribe(client: SubscriberClient, url: string, collection: string, id: string, token: string | null) {
  return client === 'sdk' ? subscribeSdk(url, collection, id, token) : subscribeStock(url, collection, id, token);
}

let subscription: Subscription | null = null;
let window: { cpu: NodeJS.CpuUsage; ops: number; at: number } | null = null;

process.on('message', (message: ToSubscriber) => {
  void (async () => {
    if (message.type === 'subscribe') {
      subscription = await subscribe(message.client, message.url, message.collection, message.id, message.token);
      send({ type: 'subscribed', textLength: subscription.text().length });
    } else if (message.type === 'start') {
      window = { cpu: process.cpuUsage(), ops: remoteOps, at: performance.now() };
      send({ type: 'started' });
    } else if (message.type === 'stop') {
      if (!window) throw new Error('stop before start');
      const cpu = process.cpuUsage(window.cpu);
      send({
        type: 'stopped',
        cpuMicros: cpu.user + cpu.system,
        remoteOps: remoteOps - window.ops,
        wallMs: performance.now() - window.at,
        textLength: subscription?.text().length ?? 0,
      });
    } else if (message.type === 'close') {
      await subscription?.close();
      send({ type: 'closed' });
      setTimeout(() => process.exit(0), 50);
    }
  })().catch((err: unknown) => send({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'loaded' });
