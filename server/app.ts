import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as SocketIoServer } from 'socket.io';
import type { WebSocketServer } from 'ws';
import { createBackend, type TandemBackend } from './backend.js';
import type { Config } from './config.js';
import type { Logger } from './ops/logger.js';
import { collectMetrics } from './ops/metrics.js';
import { openPubSub, type PubSubHandle } from './pubsub/index.js';
import { openStorage } from './storage/index.js';
import { createHttpHandler } from './transport/http-routes.js';
import { serveDemoAssets } from './transport/demo-assets.js';
import { FRAME_ENVELOPE_DEPTH } from './transport/message-stream.js';
import { attachRawWebSocket, closeRawWebSockets } from './transport/raw-websocket.js';
import { attachSocketIo, drainSocketIo } from './transport/socketio.js';
import { Turn } from './turn.js';

export interface TandemServer {
  readonly config: Config;
  readonly backend: TandemBackend;
  /** Pub/sub state and counters (Redis status, outages, catch-ups). */
  readonly pubsub: PubSubHandle;
  readonly http: HttpServer;
  readonly io: SocketIoServer;
  readonly wss: WebSocketServer;
  /** `http://host:port` actually bound (port 0 resolved). */
  readonly url: string;
  readonly port: number;
  /**
   * Called if the store fails to make acknowledged work durable (a group COMMIT failed):
   * every client has been dropped and nothing held was sent; the process should exit.
   */
  onFatal(listener: (err: Error) => void): void;
  /**
   * Graceful stop: refuse new connections, tell socket.io clients to reconnect elsewhere,
   * wait for in-flight commits (up to `shutdownTimeoutMs`), then close store and pub/sub.
   */
  close(): Promise<void>;
}

/** Opens the store and pub/sub, builds the backend and transports, and listens. */
export async function startServer(config: Config, logger: Logger): Promise<TandemServer> {
  // Where this instance holds its output until the turn's writes are durable (server/turn.ts).
  const turn = new Turn();
  const storage = await openStorage(config.dbUrl, {
    sqliteSynchronous: config.sqliteSynchronous,
    milestoneInterval: config.milestoneInterval,
    turn: config.sqliteGroupCommit ? turn : undefined,
  });
  const startedAt = Date.now();
  const pubsub = await openPubSub({ redisUrl: config.redisUrl, prefix: config.redisPrefix, logger, db: storage.db, turn });
  const backend = createBackend({
    db: storage.db,
    milestoneDb: storage.milestoneDb,
    pubsub: pubsub.pubsub,
    limits: { maxOpBytes: config.maxOpBytes, maxDepth: config.maxOpDepth },
    logger,
  });

  let draining = false;
  const http = createServer(
    createHttpHandler({
      isDraining: () => draining,
      checks: [
        { name: 'store', check: () => storage.ping() },
        // Not critical: without Redis an instance still serves and commits for its own
        // clients (and catches up afterwards); /readyz says "degraded" and names the state.
        { name: 'pubsub', check: () => pubsub.ping(), critical: false },
      ],
      extra: {
        '/metrics': () =>
          collectMetrics({
            stats: backend.stats,
            // agentsCount exists on ShareDB's Backend but not in @types/sharedb.
            agentsCount: () => (backend as unknown as { agentsCount: number }).agentsCount,
            pubsubState: () => pubsub.state(),
            storageState: () => storage.state(),
            startedAt,
          }),
      },
      serveDemo: serveDemoAssets,
    }),
  );
  // The frame depth limit is a guard against stack overflows (thousands of levels), set
  // well above MAX_OP_DEPTH so an op slightly too deep still gets TANDEM_OP_TOO_DEEP.
  const frameLimits = { maxFrameBytes: config.maxFrameBytes, maxFrameDepth: 2 * config.maxOpDepth + FRAME_ENVELOPE_DEPTH };
  const io = attachSocketIo(http, { backend, logger, ...frameLimits, turn, isDraining: () => draining });
  const wss = attachRawWebSocket(http, { backend, ...frameLimits, turn });

  // Fail-stop: ShareDB was told the turn's commits succeeded, but they are not in the store.
  // Nothing of the turn left the process; dropping every client makes each resend its
  // unacknowledged ops to an instance that can commit them.
  const fatalListeners: Array<(err: Error) => void> = [];
  turn.onFailure((err) => {
    draining = true;
    logger.fatal({ err, code: 'TANDEM_STORAGE_ERROR' }, 'store failed to COMMIT acknowledged work; dropping every client');
    io.disconnectSockets(true);
    for (const ws of wss.clients) ws.terminate();
    for (const listener of fatalListeners) listener(err);
  });

  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(config.port, config.host, () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    // Port taken, say: release the store and the Redis connections (their reconnect loop
    // would otherwise keep the process alive) before reporting the failure.
    io.close();
    await backend.closeAsync().catch(() => undefined);
    await storage.close().catch(() => undefined);
    throw err;
  }
  const port = (http.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, db: storage.kind, pubsub: pubsub.kind }, 'tandem listening');

  // Drain order matters: refuse new clients, send the connected ones elsewhere, let the
  // commits already accepted finish (and publish), and only then close pub/sub and store.
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      logger.info({ clients: io.engine.clientsCount, inFlight: backend.stats.inFlight }, 'draining');
      const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
      drainSocketIo(io, turn);
      await closeRawWebSockets(wss);
      const idle = await backend.whenIdle(config.shutdownTimeoutMs);
      if (!idle) logger.warn({ inFlight: backend.stats.inFlight }, 'shutdown timeout with commits in flight');
      await new Promise<void>((resolve) => io.close(() => resolve()));
      http.closeAllConnections();
      await httpClosed;
      await backend.closeAsync();
      await pubsub.close();
      await storage.close();
      logger.info('tandem stopped');
    })();
    return closing;
  };
  const onFatal = (listener: (err: Error) => void) => {
    fatalListeners.push(listener);
  };
  return { config, backend, pubsub, http, io, wss, url, port, onFatal, close };
}
