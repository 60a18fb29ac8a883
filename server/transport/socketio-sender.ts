import type { Socket } from 'socket.io';
import { BATCH_QUERY_PARAM, SHAREDB_BATCH_EVENT, SHAREDB_EVENT } from '../../client/protocol.js';
import type { Overflow, SendBudget } from '../limits/connection-budget.js';
import type { EngineOutbox } from '../limits/connection-outbox.js';
import type { Turn } from '../turn.js';
import { notEncodable } from './message-stream.js';

/**
 * socket.io's text encoding of an EVENT packet in the default namespace (socket.io
 * protocol v5): `2` then the JSON array `[event, ...args]`. Messages are encoded once, by
 * the sender, which then knows each one's size; socket.io would encode them again.
 */
const EVENT_PACKET_PREFIX = `2[${JSON.stringify(SHAREDB_EVENT)},`;
const BATCH_PACKET_PREFIX = `2[${JSON.stringify(SHAREDB_BATCH_EVENT)},[`;

/** How a sender bounds what is held for its client (MAX_BUFFERED_BYTES). */
export interface SenderBounds {
  /** Where the encoded packets go, and what the connection still holds. */
  outbox: EngineOutbox;
  /** Judges each message against what `outbox` holds plus this turn's queue. */
  budget: SendBudget;
  /** The next message would not fit: drop the client (called once; nothing is sent after). */
  onOverflow(overflow: Overflow): void;
}

/**
 * Sends ShareDB messages to one socket.io client, held until the turn ends (see Turn). A
 * client that asked for batches (Tandem's SDK does) then gets all of them in one
 * SHAREDB_BATCH_EVENT packet: socket.io, engine.io and the WebSocket frame cost once per
 * turn, not per message. Other socket.io clients get one SHAREDB_EVENT per message.
 *
 * With `bounds` (the server's transport), each message is encoded as it is sent, and a
 * client for which more would be held than its budget allows — in this turn's queue,
 * engine.io's buffer and the socket — is dropped before the server holds it. Without
 * (a bare socket), messages go through `socket.emit` at the end of the turn.
 */
export class SocketIoSender {
  /** This turn's messages: encoded JSON texts with bounds, objects without. */
  private queue: Array<string | object> | null = null;
  /** Length of this turn's encoded messages. */
  private queuedLength = 0;
  private overflowed = false;
  private readonly batching: boolean;

  constructor(
    private readonly socket: Socket,
    private readonly turn: Turn,
    private readonly bounds: SenderBounds | null = null,
  ) {
    this.batching = socket.handshake.query[BATCH_QUERY_PARAM] === '1';
  }

  /**
   * Queues one message for the end of this turn. With bounds, throws if the message cannot
   * be encoded (MessageStream then sends a coded error instead).
   */
  send(message: object): void {
    if (this.overflowed) return;
    let item: string | object = message;
    if (this.bounds !== null) {
      const text = JSON.stringify(message);
      const overflow = this.bounds.budget.check(text, this.queuedLength);
      if (overflow) {
        this.overflowed = true;
        this.queue = null;
        this.queuedLength = 0;
        this.bounds.onOverflow(overflow);
        return;
      }
      this.queuedLength += text.length;
      item = text;
    }
    if (this.queue) {
      this.queue.push(item);
      return;
    }
    this.queue = [item];
    this.turn.send(this.flush);
  }

  /** Sends what is queued (or drops it, when the turn failed). */
  private readonly flush = (discard: boolean): void => {
    const queue = this.queue;
    this.queue = null;
    this.queuedLength = 0;
    if (!queue || discard || !this.socket.connected) return;
    // With bounds every queued item is an encoded text, without every one is an object.
    if (this.bounds !== null) {
      this.writeEncoded(this.bounds.outbox, queue as string[]);
      this.bounds.budget.written();
    } else {
      this.emitAll(queue as object[]);
    }
  };

  private emitAll(messages: object[]): void {
    if (!this.batching || messages.length === 1) {
      for (const message of messages) this.emitOne(message);
      return;
    }
    try {
      this.socket.emit(SHAREDB_BATCH_EVENT, messages);
    } catch {
      // One message socket.io cannot encode must not silence the others.
      for (const message of messages) this.emitOne(message);
    }
  }

  private writeEncoded(outbox: EngineOutbox, texts: string[]): void {
    if (this.batching && texts.length > 1) {
      outbox.write(`${BATCH_PACKET_PREFIX}${texts.join(',')}]]`);
      return;
    }
    for (const text of texts) outbox.write(`${EVENT_PACKET_PREFIX}${text}]`);
  }

  /** socket.io encodes before it writes, so a throw sends nothing: a coded error goes instead. */
  private emitOne(message: object): void {
    try {
      this.socket.emit(SHAREDB_EVENT, message);
    } catch (err) {
      this.socket.emit(SHAREDB_EVENT, notEncodable(err));
    }
  }
}
