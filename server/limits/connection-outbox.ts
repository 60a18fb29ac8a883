/**
 * engine.io's side of MAX_BUFFERED_BYTES (connection-budget.ts): what a socket.io
 * connection holds for its client, and how to pause reading from it or drop it.
 */
import type { Socket as SocketIoSocket } from 'socket.io';

/** An engine.io connection (typed through socket.io, which depends on engine.io). */
export type EngineSocket = SocketIoSocket['conn'];

/** The one typed boundary to engine.io 6's transports (build/transports/*.js). */
interface EngineTransport {
  readonly name: string;
  /** Polling: a GET is waiting for data (so the client took the previous response). */
  readonly writable: boolean;
  /** WebSocket transport: its `ws` socket. */
  readonly socket?: { readonly bufferedAmount: number; terminate(): void; pause(): void; resume(): void };
}

function transportOf(conn: EngineSocket): EngineTransport {
  return conn.transport as unknown as EngineTransport;
}

/**
 * The bytes an engine.io connection holds for its client: packets in engine.io's write
 * buffer (waiting for the transport: a WebSocket still writing the previous batch, or a
 * long-polling client's next GET), plus what the transport itself holds — the `ws`
 * socket's buffered amount, or the last long-polling response until the client asks for
 * the next one. Counted as packets are written (their length is known: they are already
 * encoded), never by walking the buffer.
 */
export class EngineOutbox {
  /** Bytes of packets written here and not yet handed to the transport. */
  private queued = 0;
  /** Bytes of the last long-polling response. */
  private lastResponse = 0;

  constructor(private readonly conn: EngineSocket) {
    // engine.io hands its whole write buffer to the transport at once.
    conn.on('flush', () => {
      this.lastResponse = this.queued;
      this.queued = 0;
    });
  }

  /** Writes one encoded engine.io message packet (a socket.io packet's text). */
  write(packet: string): void {
    // Counted first: the write may flush synchronously, and the flush resets the count.
    this.queued += packet.length;
    this.conn.write(packet);
  }

  /** What is held for the client now, bytes. */
  buffered(): number {
    const transport = transportOf(this.conn);
    if (transport.name === 'websocket') return this.queued + (transport.socket?.bufferedAmount ?? 0);
    return this.queued + (transport.writable ? 0 : this.lastResponse);
  }

  /** Stops reading from a WebSocket client (TCP backpressure); long-polling cannot pause. */
  pauseInput(): void {
    transportOf(this.conn).socket?.pause();
  }

  resumeInput(): void {
    transportOf(this.conn).socket?.resume();
  }

  /**
   * Drops the connection and what it holds now: a WebSocket is terminated (a graceful
   * close would wait behind the unread data up to 30 s), long-polling is closed without
   * waiting for a GET that may never come; engine.io then discards its write buffer.
   */
  drop(): void {
    this.queued = 0;
    this.lastResponse = 0;
    transportOf(this.conn).socket?.terminate();
    this.conn.close(true);
  }
}
