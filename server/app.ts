import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as SocketIoServer } from 'socket.io';
import type { WebSocketServer } from 'ws';
import { createBackend, type TandemBackend } from './backend.js';
import type { Config } from './config.js';
import type { Logger } from './ops/logger.js';
import { openPubSub } from './pubsub/index.js';
import { openStorage } from './storage/index.js';
import { createHttpHandler } from './transport/http-routes.js';
import { serveLandingPage } from './transport/landing-page.js';
import { attachRawWebSocket, closeRawWebSockets } from './transport/raw-websocket.js';
import { attachSocketIo, drainSocketIo } from './transport/socketio.js';

export interface TandemServer {
  readonly config: Config;
  readonly backend: TandemBackend;
  readonly http: HttpServer;
  readonly io: SocketIoServer;
  readonly wss: WebSocketServer;
  /** `http://host:port` actually bound (port 0 resolved). */
  readonly url: string;
  readonly port: number;
  /**
   * Graceful stop: refuse new connections, tell socket.io clients to reconnect elsewhere,
   * wait for in-flight commits (up to `shutdownTimeoutMs`), then close store and pub/sub.
   */
  close(): Promise<void>;
}

/** Opens the store and pub/sub, builds the backend and transports, and listens. */
export async function startServer(config: Config, logger: Logger): Promise<TandemServer> {
  const storage = await openStorage(config.dbUrl, {
    sqliteSynchronous: config.sqliteSynchronous,
    milestoneInterval: config.milestoneInterval,
  });
  const pubsub = await openPubSub({ redisUrl: config.redisUrl, prefix: config.redisPrefix, logger });
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
        { name: 'pubsub', check: () => pubsub.ping() },
      ],
      extra: { '/metrics': () => ({ ...backend.stats, agents: (backend as unknown as { agentsCount: number }).agentsCount }) },
      serveDemo: serveLandingPage,
    }),
  );
  const io = attachSocketIo(http, { backend, logger, maxFrameBytes: config.maxFrameBytes });
  const wss = attachRawWebSocket(http, { backend, maxFrameBytes: config.maxFrameBytes });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.port, config.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, db: storage.kind, pubsub: pubsub.kind }, 'tandem listening');

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
      drainSocketIo(io);
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
  return { config, backend, http, io, wss, url, port, close };
}
