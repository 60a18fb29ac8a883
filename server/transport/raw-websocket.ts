import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { SHAREDB_WS_PATH, TOKEN_QUERY_PARAM, TandemErrorCode, type TandemError } from '../../client/protocol.js';
import { ExpiryTimer } from '../auth/expiry-timer.js';
import type { Identity } from '../auth/identity.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { TandemBackend } from '../backend.js';
import type { ResourceLimits } from '../config.js';
import type { Logger } from '../ops/logger.js';
import { startHeartbeat } from '../limits/connection-heartbeat.js';
import { SendBudget } from '../limits/connection-budget.js';
import { refusalOfReply } from '../limits/connection-refusals.js';
import { connectionLimitsOf, normalizeIp, tooManyConnections } from '../limits/connections.js';
import { releaseSubscriptionsAtEnd } from '../limits/subscriptions.js';
import type { Turn } from '../turn.js';
import { corkUntilTurnEnds } from './cork.js';
import { MessageStream } from './message-stream.js';
import { originRefusal, refuseUpgrade, type OriginPolicy } from './origins.js';
import { announcedInUrl, protocolRefusal } from './protocol-version.js';

export interface RawWebSocketOptions {
  backend: TandemBackend;
  maxFrameBytes: number;
  /** Deepest nesting a frame may have (MAX_OP_DEPTH plus the message envelope). */
  maxFrameDepth: number;
  /** Frames are held (corked) until the turn ends and its writes are durable. */
  turn: Turn;
  /** Verifies the upgrade's token; null: connections are anonymous (AUTH=none). */
  verifier: TokenVerifier | null;
  origins: OriginPolicy;
  /** Grace after a token's expiry before its connection is closed, ms. */
  authTimeoutMs: number;
  /** Per-connection bounds (buffered bytes, heartbeat, connections per IP, subscriptions). */
  limits: ResourceLimits;
  logger: Logger;
}

/** `Authorization: Bearer …`, else the `token` query parameter (browsers cannot set headers). */
function tokenOf(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) return /^Bearer\s+(.+)$/i.exec(header)?.[1];
  const url = new URL(req.url ?? '/', 'http://x');
  return url.searchParams.get(TOKEN_QUERY_PARAM) ?? undefined;
}

/**
 * ShareDB's own protocol over a plain WebSocket at /sharedb, so stock ShareDB clients
 * (`sharedb/lib/client` over `ws` or a browser WebSocket) connect unchanged. Other upgrade
 * paths are left to socket.io.
 */
export function attachRawWebSocket(httpServer: HttpServer, options: RawWebSocketOptions): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes * 2 });
  const { limits, perIp, refusals } = connectionLimitsOf(options.backend, options.limits, options.logger);
  startHeartbeat(wss, { intervalMs: limits.wsPingIntervalMs, firstMessageTimeoutMs: options.authTimeoutMs });
  wss.once('close', () => refusals.close());
  httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== SHAREDB_WS_PATH) return;
    if (!options.origins.allows(req.headers.origin)) return refuseUpgrade(socket, 403, 'Forbidden', originRefusal());
    const ip = normalizeIp(req.socket.remoteAddress);
    // Stock ShareDB clients announce no version and pass; a client that announces one this
    // server does not speak is refused before the token check (see protocol-version.ts).
    const incompatible = protocolRefusal(announcedInUrl(req.url));
    if (incompatible) {
      refusals.record({ code: incompatible.code, action: 'connect', ip }, 'connection refused', 'warn');
      return refuseUpgrade(socket, 400, 'Bad Request', JSON.stringify({ error: incompatible.toJSON() }));
    }
    if (perIp.isFull(ip)) {
      refusals.record({ code: TandemErrorCode.TOO_MANY_CONNECTIONS, action: 'connect', ip }, 'connection refused', 'warn');
      return refuseUpgrade(socket, 429, 'Too Many Requests', JSON.stringify({ error: tooManyConnections(perIp.max).toJSON() }));
    }
    // Counted from the upgrade request (token checks are async) until the TCP socket closes,
    // whichever way it ends.
    if (socket.destroyed) return;
    socket.once('close', perIp.add(ip));
    const upgrade = (identity: Identity | null) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req, identity));
    if (!options.verifier) return upgrade(null);
    options.verifier
      .verify(tokenOf(req))
      .then(upgrade, (err: TandemError) => refuseUpgrade(socket, 401, 'Unauthorized', JSON.stringify({ error: err.toJSON() })));
  });
  wss.on('connection', (ws: WebSocket, req: IncomingMessage, identity: Identity | null) => {
    // ws keeps its TCP socket private (no cork API); stock clients need one message per
    // frame, so the frames of a turn are merged at the socket instead (one writev).
    const tcp = (ws as unknown as { _socket: Socket })._socket;
    const who = { user: identity?.sub, ip: normalizeIp(req.socket.remoteAddress) };
    // bufferedAmount includes what is corked for this turn: everything not yet in the kernel.
    const budget = new SendBudget(limits.maxBufferedBytes, options.turn, () => ws.bufferedAmount);
    const stream = new MessageStream(
      {
        send: (message) => {
          const text = JSON.stringify(message);
          if (ws.readyState !== ws.OPEN) return;
          const overflow = budget.check(text);
          if (overflow) {
            refusals.record(
              { code: 'MAX_BUFFERED_BYTES', action: 'drop', ...overflow, ...stream.who },
              'client dropped: not reading',
              'warn',
            );
            ws.terminate();
            // At once, not at the socket's 'close': frames still parsed from the last read
            // must not make ShareDB build more replies for nobody.
            stream.clientDropped();
            return;
          }
          corkUntilTurnEnds(options.turn, tcp);
          ws.send(text);
          budget.written();
        },
        close: () => options.turn.send(() => ws.close(1000, 'closed by server')),
        pause: () => ws.pause(),
        resume: () => ws.resume(),
        drop: () => {
          refusals.record({ code: 'MAX_BUFFERED_BYTES', action: 'drop', ...stream.who }, 'client dropped: too many frames waiting', 'warn');
          ws.terminate();
        },
      },
      options.maxFrameBytes,
      options.maxFrameDepth,
      {
        onRefusal: (reply) => refusals.record(refusalOfReply(reply, stream.who)),
        who,
        refusalsPerSecond: limits.refusalsPerSecond,
        // Paused, a socket still delivers the rest of its last read: one chunk and a frame.
        maxWaitingBytes: limits.maxBufferedBytes + 2 * options.maxFrameBytes,
      },
    );
    ws.on('message', (data, isBinary) => stream.receive(isBinary ? data : data.toString('utf8')));
    // Stock clients cannot refresh a token in-band: past the grace they reconnect with a new one.
    const expiry = new ExpiryTimer(options.authTimeoutMs, () => options.turn.send(() => ws.close(4401, 'token expired')));
    expiry.set(identity);
    ws.on('close', () => {
      expiry.clear();
      stream.clientClosed();
    });
    ws.on('error', () => {
      expiry.clear();
      stream.clientClosed();
    });
    stream.identity = identity;
    releaseSubscriptionsAtEnd(stream, options.backend.listen(stream, req));
  });
  return wss;
}

/** Closes every raw WebSocket client with "going away" so stock clients reconnect later. */
export function closeRawWebSockets(wss: WebSocketServer): Promise<void> {
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  return new Promise((resolve) => wss.close(() => resolve()));
}
