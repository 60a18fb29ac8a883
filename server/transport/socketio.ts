import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Server as SocketIoServer } from 'socket.io';
import {
  AUTH_REFRESH_EVENT,
  DRAIN_EVENT,
  PROTOCOL_QUERY_PARAM,
  SHAREDB_EVENT,
  SHAREDB_WS_PATH,
  TandemError,
  TandemErrorCode,
} from '../../client/protocol.js';
import { setIdentity } from '../auth/agent-identity.js';
import { ExpiryTimer } from '../auth/expiry-timer.js';
import type { Identity } from '../auth/identity.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { TandemBackend } from '../backend.js';
import type { ResourceLimits } from '../config.js';
import type { Logger } from '../ops/logger.js';
import { SendBudget } from '../limits/connection-budget.js';
import { EngineOutbox, type EngineSocket } from '../limits/connection-outbox.js';
import { refusalOfReply } from '../limits/connection-refusals.js';
import { connectionLimitsOf, normalizeIp, tooManyConnections } from '../limits/connections.js';
import { releaseSubscriptionsAtEnd } from '../limits/subscriptions.js';
import type { Turn } from '../turn.js';
import { MessageStream } from './message-stream.js';
import { ORIGIN_REFUSED_MESSAGE, originRefusal, refuseUpgrade, type OriginPolicy } from './origins.js';
import { protocolRefusal } from './protocol-version.js';
import { SocketIoSender } from './socketio-sender.js';

export interface SocketIoTransportOptions {
  backend: TandemBackend;
  logger: Logger;
  maxFrameBytes: number;
  /** Deepest nesting a frame may have (MAX_OP_DEPTH plus the message envelope). */
  maxFrameDepth: number;
  /** Where messages wait for the end of the turn (and the turn's COMMIT). */
  turn: Turn;
  /** True once the instance drains: new connections are refused so clients try another URL. */
  isDraining?: () => boolean;
  /** Verifies the handshake's `auth.token`; null: connections are anonymous (AUTH=none). */
  verifier: TokenVerifier | null;
  /** Browser origins allowed to connect (polling requests and WebSocket upgrades alike). */
  origins: OriginPolicy;
  /** A connection that has not joined (authenticated) within this is closed, ms. */
  authTimeoutMs: number;
  /** Per-connection bounds (buffered bytes, connections per IP, subscriptions). */
  limits: ResourceLimits;
}

/** A refusal socket.io sends as `connect_error`, with our code in `data`. */
function connectError(error: TandemError): Error {
  return Object.assign(new Error(error.message), { data: { code: error.code } });
}

/** The per-run secret the SDK sends so its reconnects keep their source ids (bind-source.ts). */
function sourceKeyOf(auth: Record<string, unknown>): string | null {
  const key = auth.sourceKey;
  return typeof key === 'string' && key.length >= 16 && key.length <= 128 ? key : null;
}

/**
 * socket.io at its default path: each socket becomes one ShareDB agent. Both WebSocket and
 * long-polling are served. `connectionStateRecovery` stays off: ShareDB re-syncs itself.
 */
export function attachSocketIo(httpServer: HttpServer, options: SocketIoTransportOptions): SocketIoServer {
  const io = new SocketIoServer(httpServer, {
    // Twice the frame limit, so a frame between the two gets a coded error instead of a
    // dropped connection; only a frame past this cuts the connection (socket.io's own rule).
    maxHttpBufferSize: options.maxFrameBytes * 2,
    serveClient: false,
    cors: { origin: (origin, callback) => callback(null, options.origins.allows(origin)), credentials: true },
    // Browsers do not enforce CORS on WebSocket upgrades: check Origin on every request.
    allowRequest: (req, callback) => {
      const allowed = options.origins.allows(req.headers.origin);
      callback(allowed ? null : `${TandemErrorCode.ORIGIN_FORBIDDEN}: ${ORIGIN_REFUSED_MESSAGE}`, allowed);
    },
    // An engine.io connection that never joins (sends no authenticated CONNECT) is closed
    // after this; until then it holds only engine.io's small per-connection state.
    connectTimeout: options.authTimeoutMs,
  });
  // engine.io answers a refused WebSocket upgrade with a bare 400: refuse a foreign Origin
  // first, with 403 and our code, as for every other route (engine.io then finds the socket
  // closed). /sharedb upgrades are checked by the raw WebSocket transport.
  httpServer.prependListener('upgrade', (req: IncomingMessage, socket: Duplex) => {
    if ((req.url ?? '').split('?')[0] === SHAREDB_WS_PATH) return;
    if (!options.origins.allows(req.headers.origin)) refuseUpgrade(socket, 403, 'Forbidden', originRefusal());
  });
  const identities = new WeakMap<object, Identity>();
  const { limits, perIp, refusals } = connectionLimitsOf(options.backend, options.limits, options.logger);
  // Every engine.io connection counts, joined or not, until it closes: counted here and
  // refused at the socket.io CONNECT below, where the refusal can carry our code.
  io.engine.on('connection', (conn: EngineSocket) => {
    conn.once('close', perIp.add(normalizeIp(conn.remoteAddress)));
    conn.once('close', () => endPendingPollClose(conn));
  });
  // http.close() stops new TCP connections, but a kept-alive one (long-polling, a load
  // balancer's pool) can still carry a handshake: refuse it with a coded connect_error.
  io.use((_socket, next) => {
    if (!options.isDraining?.()) return next();
    const err = Object.assign(new Error('server is draining; connect to another instance'), {
      data: { code: TandemErrorCode.SHUTTING_DOWN },
    });
    next(err);
  });
  // A client announcing a protocol version this server does not speak is told so with a
  // code the SDK takes as final; checked before the token, so an outdated client learns the
  // real reason even when its token is also refused.
  io.use((socket, next) => {
    const refusal = protocolRefusal(socket.handshake.query[PROTOCOL_QUERY_PARAM]);
    if (!refusal) return next();
    refusals.record({ code: refusal.code, action: 'connect', ip: normalizeIp(socket.conn.remoteAddress) }, 'connection refused', 'warn');
    next(connectError(refusal));
  });
  io.use((socket, next) => {
    const ip = normalizeIp(socket.conn.remoteAddress);
    // This connection is counted already.
    if (perIp.max === 0 || perIp.count(ip) <= perIp.max) return next();
    refusals.record({ code: TandemErrorCode.TOO_MANY_CONNECTIONS, action: 'connect', ip }, 'connection refused', 'warn');
    // Closed once the refusal has left engine.io's buffer (a long-polling client may take
    // it only with its next GET), at the latest after AUTH_TIMEOUT_MS: socket.io would close
    // a connection that joined nothing only gracefully, waiting for a GET that may never come.
    const conn = socket.conn;
    const closeNow = () => conn.close(true);
    const latest = setTimeout(closeNow, options.authTimeoutMs);
    conn.once('drain', closeNow);
    conn.once('close', () => clearTimeout(latest));
    next(connectError(tooManyConnections(perIp.max)));
  });
  // Authentication at the handshake: nothing of a socket that fails it reaches ShareDB.
  io.use((socket, next) => {
    const verifier = options.verifier;
    if (!verifier) return next();
    verifier.verify((socket.handshake.auth as Record<string, unknown>).token).then(
      (identity) => {
        identities.set(socket, identity);
        next();
      },
      (err: TandemError) => next(connectError(err)),
    );
  });
  io.on('connection', (socket) => {
    const who = { user: identities.get(socket)?.sub, ip: normalizeIp(socket.conn.remoteAddress) };
    const outbox = new EngineOutbox(socket.conn);
    const sender = new SocketIoSender(socket, options.turn, {
      outbox,
      budget: new SendBudget(limits.maxBufferedBytes, options.turn, () => outbox.buffered()),
      onOverflow: (overflow) => {
        const transport = socket.conn.transport.name;
        refusals.record(
          { code: 'MAX_BUFFERED_BYTES', action: 'drop', ...overflow, transport, ...stream.who },
          'client dropped: not reading',
          'warn',
        );
        outbox.drop();
        // engine.io reports the close synchronously, but only if the socket was still open.
        stream.clientDropped();
      },
    });
    const stream = new MessageStream(
      {
        send: (message) => sender.send(message),
        // After the messages already held for this socket (send flushes run in order).
        close: () => options.turn.send(() => socket.disconnect(true)),
        pause: () => outbox.pauseInput(),
        resume: () => outbox.resumeInput(),
        drop: () => {
          refusals.record(
            { code: 'MAX_BUFFERED_BYTES', action: 'drop', transport: socket.conn.transport.name, ...stream.who },
            'client dropped: too many frames waiting',
            'warn',
          );
          outbox.drop();
        },
      },
      options.maxFrameBytes,
      options.maxFrameDepth,
      {
        onRefusal: (reply) => refusals.record(refusalOfReply(reply, stream.who)),
        who,
        refusalsPerSecond: limits.refusalsPerSecond,
        // Long-polling cannot pause: a POST (up to twice MAX_FRAME_BYTES) is taken whole.
        maxWaitingBytes: limits.maxBufferedBytes + 2 * options.maxFrameBytes,
      },
    );
    // Frames are taken in a socket middleware, not an event listener: socket.io defers event
    // dispatch a tick and drops events whose socket disconnected meanwhile, which loses an op
    // sent right before the client went offline. Middleware runs synchronously on arrival.
    socket.use(([event, frame], next) => {
      if (event === SHAREDB_EVENT) stream.receive(frame);
      else next();
    });
    const expiry = new ExpiryTimer(options.authTimeoutMs, () => options.turn.send(() => socket.disconnect(true)));
    socket.on('disconnect', () => {
      expiry.clear();
      stream.clientClosed();
    });
    stream.identity = identities.get(socket) ?? null;
    expiry.set(stream.identity);
    stream.sourceKey = sourceKeyOf(socket.handshake.auth as Record<string, unknown>);
    const agent = options.backend.listen(stream, socket.request);
    releaseSubscriptionsAtEnd(stream, agent);
    // A fresh token for the same user, before the current one expires (the SDK refreshes
    // ahead of `exp`): the connection, its subscriptions and its source ids carry on.
    socket.on(AUTH_REFRESH_EVENT, (token: unknown, ack: unknown) => {
      const reply = typeof ack === 'function' ? (ack as (answer: object) => void) : () => undefined;
      const current = stream.identity;
      if (!options.verifier || !current)
        return reply({ error: new TandemError(TandemErrorCode.BAD_FRAME, 'this server does not use tokens').toJSON() });
      options.verifier.verify(token).then(
        (identity) => {
          if (identity.sub !== current.sub) {
            return reply({
              error: new TandemError(TandemErrorCode.FORBIDDEN, 'a refreshed token must be for the same user (sub)').toJSON(),
            });
          }
          stream.identity = identity;
          setIdentity(agent, identity);
          expiry.set(identity);
          reply({ ok: true });
        },
        (err: TandemError) => reply({ error: err.toJSON() }),
      );
    });
  });
  return io;
}

/** Tells every client to reconnect elsewhere, then disconnects it (graceful drain). */
export function drainSocketIo(io: SocketIoServer, turn: Turn): void {
  turn.flushNow(); // what this turn holds goes out before the sockets close
  io.emit(DRAIN_EVENT);
  io.disconnectSockets(true);
}

/**
 * engine.io closes a long-polling connection by waiting up to 30 s for the client's next poll
 * to carry the close packet. That wait outlives the connection when it ends another way
 * meanwhile (the client's poll aborted, a transport error: the connection is gone, no poll
 * will come for it), and engine.close() cannot cut it short (the transport is already
 * "closing"): its timers would hold the connection's state for 30 s and keep an embedding
 * process alive after close(). This ends such a wait now.
 */
function endPendingPollClose(conn: EngineSocket): void {
  // Typed boundary: a polling transport's pending close (`shouldClose`, what its next poll
  // would run) is private in engine.io.
  const transport = conn.transport as unknown as { shouldClose?: (() => void) | null };
  const pendingClose = transport.shouldClose;
  if (!pendingClose) return;
  // Cleared first, as engine.io does when a poll runs it: the close it runs re-enters here.
  transport.shouldClose = null;
  pendingClose();
}

/** Ends every connection's wait for a last poll (see endPendingPollClose); call after io.close(). */
export function endPendingPollingCloses(io: SocketIoServer): void {
  // Typed boundary: engine.io keeps `clients` protected.
  const clients = (io.engine as unknown as { clients: Record<string, EngineSocket> }).clients;
  for (const conn of Object.values(clients)) endPendingPollClose(conn);
}
