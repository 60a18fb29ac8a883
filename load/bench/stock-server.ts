/**
 * The benchmark's peer: stock ShareDB as its README sets it up — `new ShareDB({db})` served
 * over `ws` with @teamwork/websocket-json-stream — on the same store Tandem uses (our SQLite
 * or PostgreSQL adapter from server/storage, same settings), with Tandem's conflict-resolving json1
 * type registered so both sides run the same OT type, and presence enabled (the op mix may
 * send presence). No per-document submit queue, no socket.io, no milestones, no validation.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import ShareDB from 'sharedb';
import { WebSocketServer, type WebSocket } from 'ws';
import { registerTandemTypes } from '../../ot-types/index.js';
import { openStorage } from '../../server/storage/index.js';

const require = createRequire(import.meta.url);
// @teamwork/websocket-json-stream ships no types: a Duplex built from a ws WebSocket.
const WebSocketJSONStream = require('@teamwork/websocket-json-stream') as new (ws: WebSocket) => Duplex;

export interface StockServer {
  readonly backend: ShareDB;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * `dbUrl` as Tandem's DB_URL: `sqlite:<file>` (the benchmark's default store), `memory:` or
 * `postgres://…?schema=…`; `pgPoolMax` as Tandem's PG_POOL_MAX.
 */
export async function startStockServer(dbUrl: string, opts: { pgPoolMax?: number } = {}): Promise<StockServer> {
  registerTandemTypes();
  const storage = openStorage(dbUrl, { pgPoolMax: opts.pgPoolMax });
  // Before the first client, as Tandem does on start-up: the store answers (PostgreSQL:
  // the schema is migrated and the pool's first connections are open).
  try {
    await storage.ping();
  } catch (err) {
    await storage.close().catch(() => undefined);
    throw err;
  }
  const backend = new ShareDB({ db: storage.db, presence: true, doNotForwardSendPresenceErrorsToClient: true });
  const http: Server = createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws: WebSocket) => {
    const stream = new WebSocketJSONStream(ws);
    // Not in ShareDB's README, but needed: a write to a socket that is closing emits 'error'
    // on the stream, and without a listener that crashes the server (seen in W5).
    stream.on('error', () => ws.terminate());
    backend.listen(stream);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    backend,
    url: `ws://127.0.0.1:${port}`,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await new Promise<void>((resolve) => backend.close(() => resolve()));
      await storage.close();
    },
  };
}
