import type { Socket } from 'socket.io';
import { BATCH_QUERY_PARAM, SHAREDB_BATCH_EVENT, SHAREDB_EVENT } from '../../client/protocol.js';
import type { Turn } from '../turn.js';
import { notEncodable } from './message-stream.js';

/**
 * Sends ShareDB messages to one socket.io client, held until the turn ends (see Turn). A
 * client that asked for batches (Tandem's SDK does) then gets all of them in one
 * SHAREDB_BATCH_EVENT packet: socket.io, engine.io and the WebSocket frame cost once per
 * turn, not per message. Other socket.io clients get one SHAREDB_EVENT per message.
 */
export class SocketIoSender {
  private queue: object[] | null = null;
  private readonly batching: boolean;

  constructor(
    private readonly socket: Socket,
    private readonly turn: Turn,
  ) {
    this.batching = socket.handshake.query[BATCH_QUERY_PARAM] === '1';
  }

  /** Queues one message for the end of this turn. */
  send(message: object): void {
    if (this.queue) {
      this.queue.push(message);
      return;
    }
    this.queue = [message];
    this.turn.send(this.flush);
  }

  /** Sends what is queued (or drops it, when the turn failed). */
  private readonly flush = (discard: boolean): void => {
    const queue = this.queue;
    this.queue = null;
    if (!queue || discard || !this.socket.connected) return;
    if (!this.batching || queue.length === 1) {
      for (const message of queue) this.emitOne(message);
      return;
    }
    try {
      this.socket.emit(SHAREDB_BATCH_EVENT, queue);
    } catch {
      // One message socket.io cannot encode must not silence the others.
      for (const message of queue) this.emitOne(message);
    }
  };

  /** socket.io encodes before it writes, so a throw sends nothing: a coded error goes instead. */
  private emitOne(message: object): void {
    try {
      this.socket.emit(SHAREDB_EVENT, message);
    } catch (err) {
      this.socket.emit(SHAREDB_EVENT, notEncodable(err));
    }
  }
}
