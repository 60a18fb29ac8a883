import type { Server as HttpServer } from 'node:http';
import { Server as SocketIoServer } from 'socket.io';
import { SHAREDB_EVENT, DRAIN_EVENT, TandemErrorCode } from '../../client/protocol.js';
import type { TandemBackend } from '../backend.js';
import type { Logger } from '../ops/logger.js';
import type { Turn } from '../turn.js';
import { MessageStream } from './message-stream.js';
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
    cors: { origin: true, credentials: true },
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
  io.on('connection', (socket) => {
    const sender = new SocketIoSender(socket, options.turn);
    const stream = new MessageStream(
      {
        send: (message) => sender.send(message),
        // After the messages already held for this socket (send flushes run in order).
        close: () => options.turn.send(() => socket.disconnect(true)),
      },
      options.maxFrameBytes,
      options.maxFrameDepth,
    );
    // Frames are taken in a socket middleware, not an event listener: socket.io defers event
    // dispatch a tick and drops events whose socket disconnected meanwhile, which loses an op
    // sent right before the client went offline. Middleware runs synchronously on arrival.
    socket.use(([event, frame], next) => {
      if (event === SHAREDB_EVENT) stream.receive(frame);
      else next();
    });
    socket.on('disconnect', () => stream.clientClosed());
    options.backend.listen(stream, socket.request);
  });
  return io;
}

/** Tells every client to reconnect elsewhere, then disconnects it (graceful drain). */
export function drainSocketIo(io: SocketIoServer, turn: Turn): void {
  turn.flushNow(); // what this turn holds goes out before the sockets close
  io.emit(DRAIN_EVENT);
  io.disconnectSockets(true);
}
