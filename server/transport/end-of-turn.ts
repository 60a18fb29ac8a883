import type { Socket } from 'node:net';

/**
 * Runs deferred flushes once, at the end of the current event-loop turn (setImmediate, the
 * check phase right after the poll phase that read the clients' frames).
 *
 * Why: the server's largest cost per commit was one socket write (a `writev` syscall) per
 * message — an ack plus one op per other subscriber. Within one turn a socket often gets
 * several messages (its ack and other clients' ops, or many ops of a hot document), so
 * holding them until the turn ends turns k writes into one. The delay is the rest of the
 * current turn, never a timer.
 */
class EndOfTurn {
  private pending: Array<() => void> = [];
  private scheduled = false;

  /** Runs `flush` at the end of this turn. */
  defer(flush: () => void): void {
    this.pending.push(flush);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** Runs every deferred flush now (before a drain or shutdown disconnects the sockets). */
  readonly flushNow = (): void => {
    this.scheduled = false;
    // A flush may defer more work (a write callback); that goes to the next turn.
    const due = this.pending;
    this.pending = [];
    for (const flush of due) flush();
  };
}

export const endOfTurn = new EndOfTurn();

const corked = new WeakSet<Socket>();

/**
 * Corks a TCP socket until the end of this turn, so every frame written to it meanwhile
 * leaves in one `writev`. For transports that write each message straight to the socket
 * (the raw `ws` path), where messages cannot be merged into one frame.
 */
export function corkUntilEndOfTurn(socket: Socket): void {
  if (corked.has(socket) || socket.destroyed) return;
  corked.add(socket);
  socket.cork();
  endOfTurn.defer(() => {
    corked.delete(socket);
    if (socket.writableCorked > 0) socket.uncork();
  });
}
