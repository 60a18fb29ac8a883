import WebSocket from 'ws';
import type { Connection, Doc } from 'sharedb/lib/client/index.js';
import { Connection as ShareDbConnection } from 'sharedb/lib/client/index.js';
import { connectSocket, type ConnectOptions, type SocketConnection } from '../../client/connect.js';
import { SHAREDB_WS_PATH } from '../../client/protocol.js';
import { registerTandemTypes } from '../../ot-types/index.js';
import { waitFor } from './wait.js';

export type { Connection, Doc };

/** A Tandem client over socket.io. */
export function socketClient(url: string, options: Partial<ConnectOptions> = {}): SocketConnection {
  return connectSocket({ url, reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
}

/** A stock ShareDB client over a raw WebSocket at /sharedb (as a ShareDB user writes it). */
export function stockClient(url: string): { connection: Connection; socket: WebSocket; close(): void } {
  registerTandemTypes();
  const socket = new WebSocket(url.replace(/^http/, 'ws') + SHAREDB_WS_PATH);
  // ws's WebSocket is what ShareDB's README passes; its typings differ from the DOM's.
  const connection = new ShareDbConnection(socket as unknown as ConstructorParameters<typeof ShareDbConnection>[0]);
  return { connection, socket, close: () => connection.close() };
}

export function subscribe(doc: Doc): Promise<void> {
  return new Promise((resolve, reject) => doc.subscribe((err) => (err ? reject(err) : resolve())));
}

export function fetchDoc(doc: Doc): Promise<void> {
  return new Promise((resolve, reject) => doc.fetch((err) => (err ? reject(err) : resolve())));
}

export function create(doc: Doc, data: unknown): Promise<void> {
  return new Promise((resolve, reject) => doc.create(data, 'json1', (err) => (err ? reject(err) : resolve())));
}

export function submit(doc: Doc, op: unknown): Promise<void> {
  return new Promise((resolve, reject) => doc.submitOp(op, {}, (err) => (err ? reject(err) : resolve())));
}

/** Resolves when the doc has no pending or in-flight ops (every op acknowledged). */
export function whenNothingPending(doc: Doc): Promise<void> {
  return new Promise((resolve) => doc.whenNothingPending(() => resolve()));
}

/** Waits until every doc has the given version and no pending ops. */
export async function waitForVersion(docs: Doc[], version: number, timeoutMs = 15_000): Promise<void> {
  await waitFor(() => docs.every((d) => d.version === version && !d.hasWritePending()), {
    timeoutMs,
    what: () =>
      `docs at version ${version} with nothing pending (version/pending now: ${docs.map((d) => `${d.version}/${d.hasWritePending()}`).join(', ')})`,
  });
}
