import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as SocketIoServer } from 'socket.io';
import type { WebSocketServer } from 'ws';
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { TandemError, TandemErrorCode } from '../client/protocol.js';
import { AccessPolicy, type AccessHook } from './auth/access.js';
import { loadRulesFile } from './auth/rules.js';
import { useResourceLimits } from './limits/index.js';
import { createTokenVerifier, type TokenVerifier } from './auth/token-verifier.js';
import { createBackend, type TandemBackend } from './backend.js';
import { ConfigError, type Config } from './config.js';
import type { Logger } from './ops/logger.js';
import { collectMetrics } from './ops/metrics.js';
import { TandemPrometheus } from './ops/prometheus.js';
import { routeShareDbLogs } from './ops/sharedb-logs.js';
import { connectionLimitsOf } from './limits/connections.js';
import { openPubSub, type PubSubHandle } from './pubsub/index.js';
import { openStorage, type Storage } from './storage/index.js';
import { OplogCompactor } from './storage/oplog-retention.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { createApiHandler } from './http-api/routes.js';
import { createHttpHandler, jsonBody } from './transport/http-routes.js';
import { serveDemoAssets } from './transport/demo-assets.js';
import { FRAME_ENVELOPE_DEPTH } from './transport/message-stream.js';
import { attachRawWebSocket, closeRawWebSockets } from './transport/raw-websocket.js';
import { createOriginPolicy } from './transport/origins.js';
import { attachSocketIo, drainSocketIo, endPendingPollingCloses } from './transport/socketio.js';
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
  /** Op-log compaction (OPLOG_RETENTION); null when every op is kept. */
  readonly compactor: OplogCompactor | null;
  /** Webhook deliveries (WEBHOOK_URLS); null without. */
  readonly webhooks: WebhookDispatcher | null;
}

/** What an application embedding Tandem adds to the configuration. */
export interface EmbeddingOptions {
  /**
   * Access decisions the rules file cannot express, asked after the rules allowed an action
   * (see AccessRequest): e.g. a lookup in the application's own database.
   */
  access?: AccessHook;
}

function bearer(req: IncomingMessage): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Who may read /metrics: anyone while the server runs without auth; with auth, a bearer
 * METRICS_TOKEN (for scrapers) or any valid user token.
 */
function metricsAuthorizer(verifier: TokenVerifier | null, metricsToken: string | null) {
  return async (req: IncomingMessage): Promise<TandemError | null> => {
    const token = bearer(req);
    if (metricsToken !== null && token !== undefined && sameSecret(token, metricsToken)) return null;
    if (verifier === null) {
      return metricsToken === null ? null : new TandemError(TandemErrorCode.UNAUTHENTICATED, 'METRICS_TOKEN required');
    }
    try {
      await verifier.verify(token);
      return null;
    } catch (err) {
      return err as TandemError;
    }
  };
}

/** Op-log compaction when OPLOG_RETENTION is set; refused where the store cannot remove ops. */
function startCompaction(config: Config, storage: Storage, logger: Logger): OplogCompactor | null {
  if (config.oplogRetention === null) return null;
  if (!storage.compact) {
    throw new ConfigError(
      `OPLOG_RETENTION: the ${storage.kind} store keeps every op (supported on sqlite: and postgres:)`,
      'OPLOG_RETENTION',
    );
  }
  const compactor = new OplogCompactor(storage.compact, config.oplogRetention, config.oplogCompactIntervalMs, logger);
  compactor.start();
  return compactor;
}

/** Webhook deliveries when WEBHOOK_URLS is set; refused where the store cannot keep cursors. */
function createWebhooks(config: Config, storage: Storage, logger: Logger): WebhookDispatcher | null {
  if (config.webhooks === null) return null;
  if (!storage.webhookCursors) {
    throw new ConfigError(
      `WEBHOOK_URLS: the ${storage.kind} store cannot keep delivery cursors (supported on sqlite:, postgres: and memory:)`,
      'WEBHOOK_URLS',
    );
  }
  return new WebhookDispatcher(config.webhooks, storage.db, storage.webhookCursors, logger);
}

/** Opens the store and pub/sub, builds the backend and transports, and listens. */
export async function startServer(config: Config, logger: Logger, embedding: EmbeddingOptions = {}): Promise<TandemServer> {
  routeShareDbLogs(logger);
  // Configuration mistakes first, before anything is opened.
  const verifier = config.auth.mode === 'jwt' ? createTokenVerifier(config.auth) : null;
  const access = new AccessPolicy(config.rulesFile ? loadRulesFile(config.rulesFile) : null, embedding.access ?? null);
  const origins = createOriginPolicy(config.corsOrigins, config.host);
  // Where this instance holds its output until the turn's writes are durable (server/turn.ts).
  const turn = new Turn();
  const storage = await openStorage(config.dbUrl, {
    sqliteSynchronous: config.sqliteSynchronous,
    sqliteCheckpoints: config.sqliteCheckpoints,
    milestoneInterval: config.milestoneInterval,
    snapshotCache: { cacheBytes: config.snapshotCacheMb * 1024 * 1024, flushOps: config.snapshotFlushOps, flushMs: config.snapshotFlushMs },
    pgPoolMax: config.pgPoolMax,
    pgReadTimeoutMs: config.pgReadTimeoutMs,
    turn: config.sqliteGroupCommit ? turn : undefined,
  });
  let compactor: OplogCompactor | null;
  let webhooks: WebhookDispatcher | null;
  try {
    webhooks = createWebhooks(config, storage, logger);
    compactor = startCompaction(config, storage, logger);
  } catch (err) {
    await storage.close().catch(() => undefined);
    throw err;
  }
  const startedAt = Date.now();
  const pubsub = await openPubSub({ redisUrl: config.redisUrl, prefix: config.redisPrefix, logger, db: storage.db, turn });
  const backend = createBackend({
    db: storage.db,
    milestoneDb: storage.milestoneDb,
    pubsub: pubsub.pubsub,
    limits: { maxOpBytes: config.maxOpBytes, maxDepth: config.maxOpDepth },
    logger,
    access,
    maxIdLength: config.limits.maxIdLength,
  });
  webhooks?.watch(backend);
  const rateLimits = await useResourceLimits(backend, {
    limits: config.limits,
    redisUrl: config.redisUrl,
    redisPrefix: config.redisPrefix,
    logger,
  });

  // agentsCount exists on ShareDB's Backend but not in @types/sharedb.
  const agentsCount = () => (backend as unknown as { agentsCount: number }).agentsCount;
  // Assigned once the transports exist; the connection counts read them at scrape time.
  const transports: { io: SocketIoServer | null; wss: WebSocketServer | null } = { io: null, wss: null };
  const prometheus = new TandemPrometheus({
    webhooks: webhooks?.stats ?? null,
    stats: backend.stats,
    pubsub: pubsub.pubsub,
    agentsCount,
    connections: () => ({ 'socket.io': transports.io?.of('/').sockets.size ?? 0, 'sharedb-ws': transports.wss?.clients.size ?? 0 }),
    pubsubState: () => pubsub.state(),
    storageState: () => storage.state(),
    pingStore: () => storage.ping(),
    pingPubSub: () => pubsub.ping(),
  });
  backend.onSubmitDone = prometheus.observeSubmit;

  let draining = false;
  const http = createServer(
    {
      // A connection that never completes its request (and so never authenticates) is
      // closed after AUTH_TIMEOUT_MS; the check runs every second instead of every 30 s.
      headersTimeout: config.authTimeoutMs,
      requestTimeout: Math.max(config.authTimeoutMs, 30_000),
      connectionsCheckingInterval: Math.min(1_000, config.authTimeoutMs),
    },
    createHttpHandler({
      isDraining: () => draining,
      origins,
      authorize: metricsAuthorizer(verifier, config.metricsToken),
      checks: [
        { name: 'store', check: () => storage.ping() },
        // Not critical: without Redis an instance still serves and commits for its own
        // clients (and catches up afterwards); /readyz says "degraded" and names the state.
        { name: 'pubsub', check: () => pubsub.ping(), critical: false },
      ],
      extra: {
        '/metrics': () => prometheus.scrape(),
        // The same figures as JSON (the load tool reads them).
        '/metrics.json': () =>
          jsonBody(
            collectMetrics({
              stats: backend.stats,
              agentsCount,
              pubsubState: () => pubsub.state(),
              storageState: () => storage.state(),
              startedAt,
              webhooks: webhooks?.stats ?? null,
            }),
          ),
      },
      api: createApiHandler({
        backend,
        verifier,
        maxFrameBytes: config.maxFrameBytes,
        maxFrameDepth: 2 * config.maxOpDepth + FRAME_ENVELOPE_DEPTH,
        refusals: connectionLimitsOf(backend, config.limits, logger).refusals,
      }),
      serveDemo: serveDemoAssets,
    }),
  );
  // The frame depth limit is a guard against stack overflows (thousands of levels), set
  // well above MAX_OP_DEPTH so an op slightly too deep still gets TANDEM_OP_TOO_DEEP.
  const frameLimits = { maxFrameBytes: config.maxFrameBytes, maxFrameDepth: 2 * config.maxOpDepth + FRAME_ENVELOPE_DEPTH };
  const io = attachSocketIo(http, {
    backend,
    logger,
    ...frameLimits,
    turn,
    isDraining: () => draining,
    verifier,
    origins,
    authTimeoutMs: config.authTimeoutMs,
    limits: config.limits,
  });
  const wss = attachRawWebSocket(http, {
    backend,
    ...frameLimits,
    turn,
    verifier,
    origins,
    authTimeoutMs: config.authTimeoutMs,
    limits: config.limits,
    logger,
  });
  transports.io = io;
  transports.wss = wss;
  connectionLimitsOf(backend, config.limits, logger).refusals.onRefusal = prometheus.observeRefusal;

  // Fail-stop: ShareDB was told the turn's commits succeeded, but they are not in the store.
  // Nothing of the turn left the process; dropping every client makes each resend its
  // unacknowledged ops to an instance that can commit them.
  const fatalListeners: Array<(err: Error) => void> = [];
  turn.onFailure((err) => {
    draining = true;
    logger.fatal({ err, code: TandemErrorCode.STORAGE_ERROR }, 'store failed to COMMIT acknowledged work; dropping every client');
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
    await rateLimits.close().catch(() => undefined);
    await compactor?.close();
    await webhooks?.close();
    await backend.closeAsync().catch(() => undefined);
    await storage.close().catch(() => undefined);
    throw err;
  }
  await webhooks?.start();
  const port = (http.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, db: storage.kind, pubsub: pubsub.kind, auth: config.auth.mode, rules: config.rulesFile !== null }, 'tandem listening');
  // Not a reason to stay down (the store may come up later, /readyz tells load balancers),
  // but an operator must not read "listening" and assume all is well.
  storage
    .ping()
    .catch((err: unknown) =>
      logger.warn({ db: storage.kind, err: (err as Error).message }, 'store unreachable: /readyz answers 503 until it answers'),
    );
  if (config.auth.mode === 'none' && config.auth.explicit) {
    logger.warn({ host: config.host }, 'AUTH=none: every client may read and write every document');
  }

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
      endPendingPollingCloses(io);
      http.closeAllConnections();
      await httpClosed;
      await compactor?.close();
      await webhooks?.close();
      await backend.closeAsync();
      await rateLimits.close();
      await pubsub.close();
      await storage.close();
      logger.info('tandem stopped');
    })();
    return closing;
  };
  const onFatal = (listener: (err: Error) => void) => {
    fatalListeners.push(listener);
  };
  return { config, backend, pubsub, http, io, wss, url, port, onFatal, close, compactor, webhooks };
}
