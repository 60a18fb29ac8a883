import type { ConnectionWho } from '../limits/connection-refusals.js';
import { Duplex } from 'node:stream';
import { retryAfterOf, ShareDbErrorCode, TandemError, TandemErrorCode, type WireError } from '../../client/protocol.js';
import { jsonTextNestsDeeper, utf8LongerThan } from '../../ot-types/validate-op.js';
import type { Identity } from '../auth/identity.js';
import type { SourceOwnerHint } from '../middleware/bind-source.js';
import { FramePacer } from '../limits/connection-pacing.js';
import { RefusalPenalty } from '../limits/refusal-penalty.js';
import { SentOps } from './sent-ops.js';

/** Levels a ShareDB message adds around an op or document (message → create → data …). */
export const FRAME_ENVELOPE_DEPTH = 4;

/** The reply that stands in for a message the transport could not encode. */
export function notEncodable(err: unknown): object {
  return { error: { code: TandemErrorCode.BAD_FRAME, message: `reply not encodable: ${(err as Error).message}` } };
}

/** What a message transport (a socket.io socket, a WebSocket) offers the bridge. */
export interface MessageTransport {
  /**
   * Sends one ShareDB message. The transport encodes it: socket.io encodes objects itself
   * (a pre-encoded string would be escaped and encoded a second time), a WebSocket sends
   * JSON text. Throws if the message cannot be encoded.
   */
  send(message: object): void;
  /** Ends the client connection (ShareDB ended the stream, or the server is closing). */
  close(): void;
  /** Stops reading frames from the client until `resume` (see FramePacer); optional. */
  pause?(): void;
  resume?(): void;
  /**
   * Cuts the client at once: it queued more frames than the server holds for it (a
   * transport that cannot pause). Then `clientDropped()` must follow (or the close event).
   */
  drop?(): void;
}

/** Options of a MessageStream beyond the frame limits. */
export interface MessageStreamOptions {
  /** Sees every error reply (as sent, without payload), to log the refusal. */
  onRefusal?: (reply: Readonly<Record<string, unknown>>) => void;
  /** Bytes of frames waiting to be taken (see FramePacer) past which the client is dropped. */
  maxWaitingBytes?: number;
  /** Refusals a second before the connection's input is held (RefusalPenalty); 0 or absent: never held. */
  refusalsPerSecond?: number;
  /** Who is connected, for log lines (`connection` is filled in when ShareDB's agent starts). */
  who?: ConnectionWho;
}

/**
 * Bridges one client connection to ShareDB's `backend.listen`, which wants an objectMode
 * Duplex. Frames are parsed here, not by ShareDB, because ShareDB closes the whole agent
 * on a frame that is not an object; Tandem answers such a frame with a coded error and
 * keeps the connection and its subscriptions.
 */
export class MessageStream extends Duplex implements SourceOwnerHint {
  private ended = false;
  /** The client is gone: no frame is taken any more (waiting ones may still be handled). */
  private clientGone = false;
  /** The verified user of this connection (null: anonymous); ShareDB's agent takes it at connect. */
  identity: Identity | null = null;
  /** See SourceOwnerHint. */
  sourceKey: string | null = null;
  /** The fields every log line about this connection carries. */
  readonly who: ConnectionWho;
  private readonly pacer: FramePacer;
  private readonly onRefusal: ((reply: Readonly<Record<string, unknown>>) => void) | null;
  private readonly penalty: RefusalPenalty;
  /** Ops already sent to this client, so ShareDB's repeats of them are not sent again. */
  private readonly sentOps = new SentOps();

  constructor(
    private readonly transport: MessageTransport,
    private readonly maxFrameBytes: number,
    /** Deepest nesting a frame may have; deeper ones are refused before they are parsed. */
    private readonly maxFrameDepth: number,
    options: MessageStreamOptions = {},
  ) {
    super({ objectMode: true, allowHalfOpen: false });
    this.onRefusal = options.onRefusal ?? null;
    this.who = { ...options.who };
    this.penalty = new RefusalPenalty(options.refusalsPerSecond ?? 0);
    this.pacer = new FramePacer(
      (frame) => this.handleFrame(frame),
      transport,
      options.maxWaitingBytes ?? Number.POSITIVE_INFINITY,
      () => {
        this.transport.drop?.();
        this.clientDropped();
      },
    );
    // ShareDB ends or destroys the stream when it closes the agent: close the client too.
    this.once('finish', () => this.transport.close());
  }

  /** Feeds one frame received from the client (taken now, or in a later turn: FramePacer). */
  receive(frame: unknown): void {
    if (this.clientGone) return;
    this.pacer.offer(frame);
  }

  private handleFrame(frame: unknown): void {
    if (this.ended) return;
    const parsed = this.parse(frame);
    if (parsed instanceof TandemError) {
      this.reply(parsed.toJSON(), typeof frame === 'string' ? frame : null);
      return;
    }
    this.sentOps.requested(parsed as Record<string, unknown>);
    this.push(parsed);
  }

  /**
   * Called when the client connection is gone. Ending (not destroying) the readable side
   * lets ShareDB first handle frames that arrived just before the disconnect — an op sent
   * right before a cut must still be committed, or its resend would not be recognised as
   * a duplicate — and then clean up the agent on 'end'.
   */
  clientClosed(): void {
    if (this.clientGone) return;
    this.clientGone = true;
    this.pacer.release();
    this.pacer.whenIdle(() => this.endReadable());
  }

  /**
   * Called when the server dropped the client (it did not read, or sent more than the
   * server holds): frames not taken yet are forgotten — no work for a client that is gone.
   */
  clientDropped(): void {
    this.clientGone = true;
    this.pacer.discard();
    this.endReadable();
  }

  private endReadable(): void {
    if (this.ended) return;
    this.ended = true;
    this.once('end', () => this.destroy());
    this.push(null);
  }

  override _read(): void {
    // Frames are pushed as they are taken; FramePacer and the transports do flow control.
  }

  override _write(message: object, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.ended || !this.sentOps.shouldSend(message as Record<string, unknown>)) return callback();
    // ShareDB answers a refused request by echoing all of it with `error` added: a refused
    // 1 MB op would come back whole (and sit in memory for a client that does not read).
    if ((message as { error?: unknown }).error) {
      message = withRetryAfter(withoutPayload(message as Record<string, unknown>));
      this.refused(message as Record<string, unknown>);
    }
    try {
      this.transport.send(message);
    } catch (err) {
      // A reply ShareDB built that cannot be encoded must not silence the connection.
      this.transport.send(notEncodable(err));
    }
    callback();
  }

  private parse(frame: unknown): object | TandemError {
    if (typeof frame !== 'string') {
      return new TandemError(TandemErrorCode.BAD_FRAME, 'frames must be JSON text');
    }
    if (utf8LongerThan(frame, this.maxFrameBytes, Buffer.byteLength)) {
      return new TandemError(TandemErrorCode.FRAME_TOO_LARGE, `frame exceeds ${this.maxFrameBytes} bytes`);
    }
    if (jsonTextNestsDeeper(frame, this.maxFrameDepth)) {
      return new TandemError(TandemErrorCode.BAD_FRAME, `frame nests deeper than ${this.maxFrameDepth} levels`);
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

  /**
   * Errors for frames ShareDB never saw. When the refused frame is still parseable (too
   * large or too deep, but JSON), the reply echoes its request fields (`a`, `c`, `d`,
   * `seq`, `id`…) as ShareDB does, so the client fails the matching request — a refused op
   * is rolled back instead of waiting forever for an ack. Otherwise there is no `a`, and
   * ShareDB clients log it and go on.
   */
  private reply(error: WireError, frame: string | null): void {
    const reply = { ...(frame === null ? {} : requestFields(frame)), error };
    this.refused(reply);
    this.transport.send(reply);
  }

  private refused(reply: Readonly<Record<string, unknown>>): void {
    this.onRefusal?.(reply);
    // ERR_NO_OP is ShareDB telling an honest client its op vanished in a transform.
    const code = (reply.error as { code?: unknown } | undefined)?.code;
    if (!this.clientGone && code !== ShareDbErrorCode.NO_OP) this.pacer.hold(this.penalty.refused());
  }
}

/** Request fields that carry data, not identity: never echoed in an error reply. */
const PAYLOAD_FIELDS = new Set(['op', 'create', 'q', 'p', 'data']);

function withoutPayload(message: Record<string, unknown>): Record<string, unknown> {
  if (!Object.keys(message).some((key) => PAYLOAD_FIELDS.has(key))) return message;
  const reply: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) if (!PAYLOAD_FIELDS.has(key)) reply[key] = value;
  return reply;
}

/** A RATE_LIMITED reply carries the wait as a number too: `error.retryAfterMs`. */
function withRetryAfter(message: Record<string, unknown>): Record<string, unknown> {
  const error = message.error as WireError;
  if (error?.code !== TandemErrorCode.RATE_LIMITED) return message;
  const retryAfterMs = retryAfterOf(error);
  return retryAfterMs === null ? message : { ...message, error: { ...error, retryAfterMs } };
}

const ECHOED_FIELDS: ReadonlyArray<[field: string, type: 'string' | 'number']> = [
  ['a', 'string'],
  ['c', 'string'],
  ['d', 'string'],
  ['src', 'string'],
  ['ch', 'string'],
  ['seq', 'number'],
  ['id', 'number'],
  ['v', 'number'],
];

/** The primitive request fields of a JSON frame; JSON.parse is not recursive in V8. */
function requestFields(frame: string): Record<string, string | number> {
  let value: unknown;
  try {
    value = JSON.parse(frame);
  } catch {
    return {};
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  const fields: Record<string, string | number> = {};
  for (const [field, type] of ECHOED_FIELDS) {
    const v = (value as Record<string, unknown>)[field];
    if (typeof v === type && (type === 'number' || (v as string).length <= 1024)) fields[field] = v as string | number;
  }
  return fields;
}
