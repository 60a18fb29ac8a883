/**
 * ShareDB clients for the presence resilience tests, on either transport, with a tap on
 * every message they receive (ShareDB's client drops `retryAfterMs` and hands replies to
 * nobody when no presence object waits for them; the tests need both).
 */
import type { Connection, Doc, LocalPresence, Presence } from 'sharedb/lib/client/index.js';
import { JSON1_TYPE_URI, type Json1Presence } from '../../ot-types/index.js';
import { socketClient, stockClient } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { call } from '../helpers/callback.js';

export type Transport = 'sharedb' | 'socket.io';
export const TRANSPORTS: readonly Transport[] = ['sharedb', 'socket.io'];

/** A received ShareDB message, as far as these tests read it. */
export interface Received {
  a?: string;
  ch?: string;
  id?: string;
  src?: string;
  p?: unknown;
  pv?: number;
  v?: number;
  error?: { code?: string; message?: string; retryAfterMs?: number };
}

export interface TappedClient {
  readonly transport: Transport;
  readonly connection: Connection;
  /** Every message received so far, in order (copies taken before ShareDB reads them). */
  readonly received: Received[];
  /** Presence messages ('p') received without an error; counted even when not kept. */
  presenceCount: number;
  /** Error replies received, by code; counted even when not kept. */
  readonly errorCounts: Map<string, number>;
  /** Keep only the counts from now on (a subscriber or attacker in a flood). */
  countOnly: boolean;
  close(): void;
}

interface TappableSocket {
  onmessage: ((event: { data: unknown }) => void) | null;
}

/** Opens a connection on `transport` and resolves once ShareDB may send on it. */
export async function openClient(url: string, transport: Transport, closers: Array<() => Promise<void>>): Promise<TappedClient> {
  const opened = transport === 'sharedb' ? stockClient(url) : socketClient(url);
  const client: TappedClient = {
    transport,
    connection: opened.connection,
    received: [],
    presenceCount: 0,
    errorCounts: new Map(),
    countOnly: false,
    close: () => opened.close(),
  };
  closers.push(async () => opened.close());
  // ShareDB's Connection installed its handler when it bound the socket (a ws WebSocket or
  // the socket.io shim; `connection.socket` is not in @types/sharedb): wrap it.
  const socket = (opened.connection as unknown as { socket: TappableSocket }).socket;
  const inner = socket.onmessage!;
  socket.onmessage = (event) => {
    const message = (typeof event.data === 'string' ? JSON.parse(event.data) : { ...(event.data as object) }) as Received;
    const code = message.error?.code;
    if (code !== undefined) client.errorCounts.set(code, (client.errorCounts.get(code) ?? 0) + 1);
    else if (message.a === 'p') client.presenceCount++;
    if (!client.countOnly) client.received.push(message.error ? { ...message, error: { ...message.error } } : message);
    inner.call(socket, event);
  };
  await waitFor(() => opened.connection.state === 'connected', { what: `${transport} connection` });
  return client;
}

/** The error replies received so far with `code`. */
export function errorsWith(client: TappedClient, code: string): Received[] {
  return client.received.filter((m) => m.error?.code === code);
}

/** A document presence message as LocalDocPresence builds it, for raw sends. */
export function presenceMessage(fields: {
  c: string;
  d: string;
  id: string;
  pv: number;
  v: number | null;
  p: unknown;
}): Record<string, unknown> {
  return { a: 'p', ch: `${fields.c}.${fields.d}`, t: JSON1_TYPE_URI, ...fields };
}

/** Sends a raw ShareDB message (what a hand-written or hostile client sends). */
export function sendRaw(client: TappedClient, message: Record<string, unknown>): void {
  // Connection.send is ShareDB's own writer; its typing wants a full message union.
  client.connection.send(message as never);
}

/** The shared promise wrapper under the name these tests use. */
export const callback = call;

/** Subscribes to a document's presence (and the document, which presence needs loaded). */
export async function joinPresence(
  client: TappedClient,
  collection: string,
  id: string,
): Promise<{ doc: Doc; presence: Presence<Cursor | null> }> {
  const doc = client.connection.get(collection, id);
  await callback((done) => doc.subscribe(done));
  const presence = client.connection.getDocPresence(collection, id) as Presence<Cursor | null>;
  // Refusals also arrive as 'error' events (a refused 'pr'); the tap records them, and
  // ShareDB's emitter would throw them without a listener.
  presence.on('error', () => undefined);
  await callback((done) => presence.subscribe(done));
  return { doc, presence };
}

/** A cursor as the SDK sends it; `user.pad` makes it as large as a test needs. */
export interface Cursor extends Json1Presence {
  user: { name: string; pad?: string };
}

/** Submits a local presence value; resolves with the error code it was refused with, or null. */
export function submitPresence(local: LocalPresence<Cursor | null>, value: Cursor | null): Promise<string | null> {
  return new Promise((resolve) => local.submit(value, (err) => resolve(err ? String((err as { code?: unknown }).code) : null)));
}

/** Where `text` would put a cursor before character `offset`. */
export function cursorAt(offset: number, name: string, pad?: string): Cursor {
  return { path: ['text'], anchor: offset, head: offset, user: pad === undefined ? { name } : { name, pad } };
}
