/**
 * Helpers for the query resilience tests: a ShareDB Connection on either transport with a
 * tap on the error replies (ShareDB's client drops `retryAfterMs`), queries as promises, and
 * a SQLite file filled with many documents before a server opens it (as fast as the store
 * writes: one transaction for all).
 */
import type { Connection, Doc, Query } from 'sharedb/lib/client/index.js';
import { JSON1_TYPE_URI } from '../../ot-types/index.js';
import { createSqliteDb } from '../../server/storage/sqlite.js';
import { Turn } from '../../server/turn.js';
import { socketClient, stockClient } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';

export type Transport = 'sharedb' | 'socket.io';
export const TRANSPORTS: readonly Transport[] = ['sharedb', 'socket.io'];

export interface WireErrorSeen {
  code?: string;
  message?: string;
  retryAfterMs?: number;
}

export interface QueryClient {
  readonly transport: Transport;
  readonly connection: Connection;
  /** Every error reply received, in order, as it came over the wire. */
  readonly errors: WireErrorSeen[];
  close(): void;
}

interface TappableSocket {
  onmessage: ((event: { data: unknown }) => void) | null;
}

/** Opens a connection on `transport`; resolves once it is connected. Closed by `closers`. */
export async function openQueryClient(url: string, transport: Transport, closers: Array<() => Promise<void>>): Promise<QueryClient> {
  const opened = transport === 'sharedb' ? stockClient(url) : socketClient(url);
  closers.push(async () => opened.close());
  const errors: WireErrorSeen[] = [];
  // The socket ShareDB bound (a ws WebSocket or the socket.io shim); not in @types/sharedb.
  const socket = (opened.connection as unknown as { socket: TappableSocket }).socket;
  const inner = socket.onmessage!;
  socket.onmessage = (event) => {
    const message = (typeof event.data === 'string' ? JSON.parse(event.data) : event.data) as { error?: WireErrorSeen };
    if (message.error) errors.push({ ...message.error });
    inner.call(socket, event);
  };
  // A query error on a subscription is also emitted on the Connection: keep it from
  // becoming an unhandled 'error' event (the tests read it from the callback or `errors`).
  opened.connection.on('error', () => undefined);
  await waitFor(() => opened.connection.state === 'connected', { what: `${transport} connection` });
  return { transport, connection: opened.connection, errors, close: () => opened.close() };
}

export interface FetchResult {
  ids: string[];
  extra: unknown;
}

/** A fetch query; rejects with the server's coded error. */
export function fetchQuery(connection: Connection, collection: string, query: unknown): Promise<FetchResult> {
  return new Promise((resolve, reject) => {
    const fetched = connection.createFetchQuery(collection, query, {}, (err, results) => {
      if (err) reject(err);
      else resolve({ ids: results.map((d: Doc) => d.id), extra: fetched.extra });
    });
  });
}

/** A subscribed query once its first results arrived; rejects with the server's coded error. */
export function subscribeQuery(connection: Connection, collection: string, query: unknown): Promise<Query> {
  return new Promise((resolve, reject) => {
    const subscribed = connection.createSubscribeQuery(collection, query, {}, (err) => {
      // Later errors (a re-run refused) are read from QueryClient.errors.
      subscribed.on('error', () => undefined);
      if (err) {
        subscribed.destroy();
        reject(err);
      } else resolve(subscribed);
    });
  });
}

/** The code a promise rejects with, or 'resolved'. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${(err as Error).message}`;
  }
}

/**
 * Writes `count` json1 documents (`${prefix}${i}`, zero-padded) into `collection` of the
 * SQLite file at `path`, with their create op as a client's would be, then closes it.
 */
export function populate(
  path: string,
  collection: string,
  count: number,
  data: (i: number) => Record<string, unknown>,
  prefix = 'd',
): void {
  const turn = new Turn();
  const db = createSqliteDb({ path, turn });
  try {
    for (let i = 0; i < count; i++) {
      const id = `${prefix}${String(i).padStart(6, '0')}`;
      const body = data(i);
      const now = Date.now();
      const created = db.commitOp(
        collection,
        id,
        { v: 0, src: 'populate', seq: i + 1, create: { type: JSON1_TYPE_URI, data: body }, m: { ts: now } },
        { id, v: 1, type: JSON1_TYPE_URI, data: body, m: { ctime: now, mtime: now } },
      );
      if (!created) throw new Error(`populate: ${collection}/${id} exists`);
    }
    turn.flushNow();
  } finally {
    db.close();
  }
}
