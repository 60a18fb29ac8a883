import type { Socket } from 'socket.io';
import { BATCH_QUERY_PARAM, SHAREDB_BATCH_EVENT, SHAREDB_EVENT } from '../../client/protocol.js';
import { endOfTurn } from './end-of-turn.js';
import { notEncodable } from './message-stream.js';

/**
 * Sends ShareDB messages to one socket.io client. A client that asked for batches (Tandem's
 * SDK does) gets every message of an event-loop turn in one SHAREDB_BATCH_EVENT packet:
 * socket.io, engine.io and the WebSocket frame then cost once per turn, not per message.
 * Other socket.io clients get one SHAREDB_EVENT per message, sent at once.
 */
export class SocketIoSender {
  private queue: object[] | null = null;
  private readonly batching: boolean;

  constructor(private readonly socket: Socket) {
    this.batching = socket.handshake.query[BATCH_QUERY_PARAM] === '1';
  }

  /** Sends (or queues for this turn) one message; throws only when unbatched encoding fails. */
  send(message: object): void {
    if (!this.batching) {
      this.socket.emit(SHAREDB_EVENT, message);
      return;
    }
    if (this.queue) {
      this.queue.push(message);
      return;
    }
    this.queue = [message];
    endOfTurn.defer(this.flush);
  }

  /** Sends what is queued now (before the socket is disconnected). */
  readonly flush = (): void => {
    const queue = this.queue;
    this.queue = null;
    if (!queue || !this.socket.connected) return;
    try {
      if (queue.length === 1) this.socket.emit(SHAREDB_EVENT, queue[0]);
      else this.socket.emit(SHAREDB_BATCH_EVENT, queue);
    } catch {
      // One message socket.io cannot encode must not silence the others: send them one by
      // one, each unencodable one replaced by a coded error (as the unbatched path does).
      for (const message of queue) {
        try {
          this.socket.emit(SHAREDB_EVENT, message);
        } catch (err) {
          this.socket.emit(SHAREDB_EVENT, notEncodable(err));
        }
      }
    }
  };
}
