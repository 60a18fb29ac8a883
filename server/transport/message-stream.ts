import { Duplex } from 'node:stream';
import { TandemError, TandemErrorCode, type WireError } from '../../client/protocol.js';

/** What a text-message transport (a socket.io socket, a WebSocket) offers the bridge. */
export interface MessageTransport {
  send(text: string): void;
  /** Ends the client connection (ShareDB ended the stream, or the server is closing). */
  close(): void;
}

/**
 * Bridges one client connection to ShareDB's `backend.listen`, which wants an objectMode
 * Duplex. Frames are parsed here, not by ShareDB, because ShareDB closes the whole agent
 * on a frame that is not an object; Tandem answers such a frame with a coded error and
 * keeps the connection and its subscriptions.
 */
export class MessageStream extends Duplex {
  private ended = false;

  constructor(
    private readonly transport: MessageTransport,
    private readonly maxFrameBytes: number,
  ) {
    super({ objectMode: true, allowHalfOpen: false });
    // ShareDB ends or destroys the stream when it closes the agent: close the client too.
    this.once('finish', () => this.transport.close());
  }

  /** Feeds one frame received from the client. */
  receive(frame: unknown): void {
    if (this.ended) return;
    const parsed = this.parse(frame);
    if (parsed instanceof TandemError) {
      this.reply(parsed.toJSON());
      return;
    }
    this.push(parsed);
  }

  /**
   * Called when the client connection is gone. Ending (not destroying) the readable side
   * lets ShareDB first handle frames that arrived just before the disconnect — an op sent
   * right before a cut must still be committed, or its resend would not be recognised as
   * a duplicate — and then clean up the agent on 'end'.
   */
  clientClosed(): void {
    if (this.ended) return;
    this.ended = true;
    this.once('end', () => this.destroy());
    this.push(null);
  }

  override _read(): void {
    // Frames are pushed as they arrive; the transports have their own flow control.
  }

  override _write(message: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.ended) this.transport.send(JSON.stringify(message));
    callback();
  }

  private parse(frame: unknown): object | TandemError {
    if (typeof frame !== 'string') {
      return new TandemError(TandemErrorCode.BAD_FRAME, 'frames must be JSON text');
    }
    // String length bounds UTF-8 bytes from below by ~1/3; compare bytes only when close.
    if (frame.length > this.maxFrameBytes || (frame.length * 3 > this.maxFrameBytes && Buffer.byteLength(frame) > this.maxFrameBytes)) {
      return new TandemError(TandemErrorCode.FRAME_TOO_LARGE, `frame exceeds ${this.maxFrameBytes} bytes`);
    }
    let value: unknown;
    try {
      value = JSON.parse(frame);
    } catch {
      return new TandemError(TandemErrorCode.BAD_FRAME, 'frame is not valid JSON');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return new TandemError(TandemErrorCode.BAD_FRAME, 'frame must be a JSON object');
    }
    return value;
  }

  /** Errors for frames ShareDB never saw; no `a` field, so ShareDB clients log and go on. */
  private reply(error: WireError): void {
    this.transport.send(JSON.stringify({ error }));
  }
}
