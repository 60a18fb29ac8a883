/**
 * What the server holds in memory for one client that has not taken it yet
 * (MAX_BUFFERED_BYTES). A client that stops reading — its TCP receive window full, or a
 * long-polling client that never comes back for its data — would otherwise make the
 * server queue every reply and broadcast for it until the process runs out of memory.
 * Such a client is dropped instead; it reconnects and catches up like after any cut.
 * Judged message by message, on what the transport reports as held: `ws.bufferedAmount`
 * for /sharedb, EngineOutbox for socket.io.
 */
import { utf8LongerThan } from '../../ot-types/validate-op.js';
import type { Turn } from '../turn.js';

/**
 * True when sending `text` to a client for which `held` bytes are already waiting would
 * take it past `max`. A message onto an empty buffer always goes, however large: a client
 * that reads must be able to receive any single reply (a large snapshot, say).
 * Lengths of JavaScript strings stand for bytes; a string is compared in UTF-8 bytes only
 * when its length alone cannot decide.
 */
export function overBudget(held: number, text: string, max: number): boolean {
  if (held <= 0) return false;
  const room = max - held;
  if (room < 0) return true;
  return utf8LongerThan(text, room, Buffer.byteLength);
}

/**
 * How far behind a client that keeps reading may fall, in MAX_BUFFERED_BYTES: a burst of
 * replies, or the catch-up after a reconnect. That catch-up is everything the client had
 * not processed when it was dropped — up to MAX_BUFFERED_BYTES held by the server plus
 * what the kernel's socket buffers held (measured ~4 MB on Linux loopback) — and ShareDB
 * sends it in one go; bounded by MAX_BUFFERED_BYTES alone it would be dropped again, and
 * again. A client that reads more slowly than its messages come is still dropped here.
 */
export const READING_CLIENT_FACTOR = 4;

/** Why a client is dropped: what was held, and the bound the next message would pass. */
export interface Overflow {
  heldBytes: number;
  limitBytes: number;
  /** False: the client took nothing since the server last wrote to it. */
  reading: boolean;
}

/**
 * Decides for each message whether a client may be sent it or must be dropped. A client
 * that took nothing since the server's previous write (checked once per turn: within a
 * turn the socket is corked and nothing moves) is not reading: it may not be held more
 * than `max` bytes. One that took something — or had taken everything — may be held up to
 * READING_CLIENT_FACTOR × `max`. A message onto an empty buffer always goes (overBudget).
 */
export class SendBudget {
  private checkedThisTurn = false;
  private limit: number;
  private heldAfterLastWrite = 0;
  private reading = true;

  constructor(
    private readonly max: number,
    private readonly turn: Turn,
    /** Bytes held for the client now, including what this turn queued or corked. */
    private readonly held: () => number,
  ) {
    this.limit = max * READING_CLIENT_FACTOR;
  }

  /** Null when `text` may be sent (queued); else why the client must be dropped. */
  check(text: string, queuedThisTurn = 0): Overflow | null {
    const held = this.held() + queuedThisTurn;
    if (!this.checkedThisTurn) {
      this.checkedThisTurn = true;
      this.turn.send(this.turnEnded);
      this.reading = held === 0 || held < this.heldAfterLastWrite;
      this.limit = this.reading ? this.max * READING_CLIENT_FACTOR : this.max;
    }
    return overBudget(held, text, this.limit) ? { heldBytes: held, limitBytes: this.limit, reading: this.reading } : null;
  }

  /** Call after writing to the transport: what is held then is the mark progress is measured from. */
  written(): void {
    this.heldAfterLastWrite = this.held();
  }

  private readonly turnEnded = (): void => {
    this.checkedThisTurn = false;
  };
}
