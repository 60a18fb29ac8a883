import type { Socket } from 'node:net';
import type { Turn } from '../turn.js';

const corked = new WeakSet<Socket>();

/**
 * Corks a TCP socket until the turn ends, so every frame written to it meanwhile leaves in
 * one `writev` — after the turn's writes are durable. For transports that write each
 * message straight to the socket (the raw `ws` path, where a message is a frame). If the
 * turn failed, the held bytes never leave: the socket is destroyed instead.
 */
export function corkUntilTurnEnds(turn: Turn, socket: Socket): void {
  if (corked.has(socket) || socket.destroyed) return;
  corked.add(socket);
  socket.cork();
  turn.send((discard) => {
    corked.delete(socket);
    if (discard) socket.destroy();
    else if (socket.writableCorked > 0) socket.uncork();
  });
}
