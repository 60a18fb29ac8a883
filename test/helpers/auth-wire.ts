/**
 * Wire-level helpers for the authentication and origin tests: what a refused connection
 * sees (socket.io connect_error, HTTP status and body of a refused upgrade), plain HTTP
 * requests with chosen headers, a stock ShareDB client carrying a token, and the store's
 * own count of a document's ops. Everything opened here is closed by the caller through
 * the returned `close()` (or is closed before the promise settles).
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import WebSocket from 'ws';
import { io, type Socket } from 'socket.io-client';
import { Connection as ShareDbConnection } from 'sharedb/lib/client/index.js';
import type { Connection } from 'sharedb/lib/client/index.js';
import { SHAREDB_WS_PATH, TOKEN_QUERY_PARAM } from '../../client/protocol.js';
import { registerTandemTypes } from '../../ot-types/index.js';
import { fetchDoc } from './clients.js';
import type { TestServer } from './server.js';

/** What a socket.io handshake ended with. */
export type SocketIoOutcome = { kind: 'refused'; code: string | null; message: string } | { kind: 'connected'; socket: Socket };

/**
 * One socket.io-client handshake with `auth` (no reconnection, no shared Manager), settled
 * by the first `connect` or `connect_error`. A connected socket is handed over to the caller,
 * who must disconnect it; a refused one is already closed.
 */
export function socketIoHandshake(
  url: string,
  auth: Record<string, unknown>,
  transports: Array<'websocket' | 'polling'> = ['websocket'],
  extraHeaders?: Record<string, string>,
): Promise<SocketIoOutcome> {
  const socket = io(url, { auth, transports, reconnection: false, forceNew: true, ...(extraHeaders ? { extraHeaders } : {}) });
  return new Promise((resolve) => {
    socket.once('connect', () => {
      socket.off('connect_error');
      resolve({ kind: 'connected', socket });
    });
    socket.once('connect_error', (err: Error) => {
      socket.off('connect');
      socket.disconnect();
      const data = (err as { data?: { code?: unknown } }).data;
      resolve({ kind: 'refused', code: typeof data?.code === 'string' ? data.code : null, message: err.message });
    });
  });
}

/** The raw answer to a WebSocket upgrade that was refused. */
export interface RefusedUpgrade {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface UpgradeOptions {
  /** Sent as `Authorization: Bearer <token>` (or as `authorization` verbatim). */
  bearer?: string;
  authorization?: string;
  /** Appended as `?token=`. */
  queryToken?: string;
  origin?: string;
  /** Upgrade path and query; default /sharedb. */
  path?: string;
}

function upgradeUrl(url: string, options: UpgradeOptions): string {
  const target = new URL(options.path ?? SHAREDB_WS_PATH, url.replace(/^http/, 'ws'));
  if (options.queryToken !== undefined) target.searchParams.set(TOKEN_QUERY_PARAM, options.queryToken);
  return target.toString();
}

function upgradeHeaders(options: UpgradeOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  if (options.bearer !== undefined) headers.authorization = `Bearer ${options.bearer}`;
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  return headers;
}

/**
 * Opens a `ws` WebSocket and reports how the upgrade ended: `open` (the caller owns and
 * closes the socket) or `refused` with the server's status and full body.
 */
export function tryUpgrade(
  url: string,
  options: UpgradeOptions = {},
): Promise<{ kind: 'open'; ws: WebSocket } | ({ kind: 'refused' } & RefusedUpgrade)> {
  const ws = new WebSocket(upgradeUrl(url, options), {
    headers: upgradeHeaders(options),
    ...(options.origin !== undefined ? { origin: options.origin } : {}),
  });
  return new Promise((resolve, reject) => {
    // With an 'unexpected-response' listener ws leaves the refused response to us: we read
    // the body the server sent, then abort the request ourselves.
    ws.on('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => undefined);
      res.on('close', () => {
        resolve({ kind: 'refused', status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        req.destroy();
      });
    });
    ws.once('open', () => resolve({ kind: 'open', ws }));
    // After a refusal has been resolved, ws still reports the aborted handshake here.
    ws.on('error', (err) => reject(err));
  });
}

/** A refused upgrade's JSON body, parsed (fails the test with the raw text otherwise). */
export function jsonBody(refused: { body: string }): { error?: { code?: unknown; message?: unknown } } {
  try {
    return JSON.parse(refused.body) as { error?: { code?: unknown; message?: unknown } };
  } catch {
    throw new Error(`expected a JSON body, got ${JSON.stringify(refused.body)}`);
  }
}

/** Closes a `ws` socket and resolves once it is closed. */
export function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close();
  });
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One plain HTTP request (no keep-alive, so no socket outlives it). */
export function httpGet(url: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, url), { method, headers: { connection: 'close', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A stock ShareDB client over a raw WebSocket at /sharedb that presents a token. */
export interface TokenStockClient {
  connection: Connection;
  socket: WebSocket;
  /** Set when the upgrade was refused: the server's answer. */
  refused: RefusedUpgrade | null;
  close(): Promise<void>;
}

/**
 * Like helpers/clients.ts stockClient, with the token in an `Authorization: Bearer` header
 * (how a server-side ShareDB user sends it) or in `?token=` (how a browser has to).
 */
export function tokenStockClient(url: string, options: UpgradeOptions): TokenStockClient {
  registerTandemTypes();
  const socket = new WebSocket(upgradeUrl(url, options), {
    headers: upgradeHeaders(options),
    ...(options.origin !== undefined ? { origin: options.origin } : {}),
  });
  const client: TokenStockClient = {
    // ws's WebSocket is what ShareDB's README passes; its typings differ from the DOM's.
    connection: new ShareDbConnection(socket as unknown as ConstructorParameters<typeof ShareDbConnection>[0]),
    socket,
    refused: null,
    close: async () => {
      client.connection.close();
      await closeWs(socket);
    },
  };
  socket.on('unexpected-response', (req, res) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('error', () => undefined);
    res.on('close', () => {
      client.refused = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') };
      req.destroy();
    });
  });
  // A refused upgrade also surfaces as an error; ShareDB reports it as 'connection error'.
  socket.on('error', () => undefined);
  return client;
}

/**
 * The store's own view of a document: snapshot version, data, how many ops it holds, and
 * the user each op was committed for (`m.user`, stamped by the server from the token).
 */
export async function storeState(
  server: TestServer,
  collection: string,
  id: string,
): Promise<{ v: number; data: unknown; ops: number; users: unknown[] }> {
  const connection = server.backend.connect();
  try {
    const doc = connection.get(collection, id);
    await fetchDoc(doc);
    // `metadata: true`: the DB then returns each op's `m` (where the user is).
    const ops = await new Promise<Array<{ m?: { user?: unknown } }>>((resolve, reject) =>
      server.backend.db.getOps(collection, id, 0, null, { metadata: true }, (err: unknown, found: Array<{ m?: { user?: unknown } }>) =>
        err ? reject(err) : resolve(found),
      ),
    );
    return { v: doc.version ?? -1, data: structuredClone(doc.data) as unknown, ops: ops.length, users: ops.map((op) => op.m?.user) };
  } finally {
    connection.close();
  }
}
