/**
 * Connections and the per-frame oracle for the malformed-frames fuzz with authentication on.
 *
 * `AuthedWire` is a byte-level ShareDB client (frames go out exactly as given, every frame
 * received is kept in `inbox`, a close by the server is recorded instead of thrown) that
 * presents a token, over one of three transports:
 * - 'ws': a plain WebSocket on /sharedb, token in `Authorization: Bearer`;
 * - 'socket.io': socket.io-client emitting on SHAREDB_EVENT, handshake `auth: {token}`,
 *   `tandemBatch` unset (one SHAREDB_EVENT per server message);
 * - 'socket.io+batch': the same with `tandemBatch=1`; SHAREDB_BATCH_EVENT packets are
 *   unpacked into `inbox` in order (and counted in `batches`).
 *
 * `frameVerdict` says, from the frame alone, what the transport layer must answer before
 * ShareDB sees anything (server/transport/message-stream.ts): the exact refusal code, a
 * closed connection (invalid UTF-8 over ws), or nothing (the frame reaches ShareDB).
 */
import WebSocket from 'ws';
import { io, type Socket } from 'socket.io-client';
import { Connection as ShareDbConnection, type Connection } from 'sharedb/lib/client/index.js';
import {
  BATCH_QUERY_PARAM,
  SHAREDB_BATCH_EVENT,
  SHAREDB_EVENT,
  SHAREDB_WS_PATH,
  TOKEN_QUERY_PARAM,
  TandemErrorCode,
} from '../../client/protocol.js';
import { registerTandemTypes } from '../../ot-types/index.js';
import type { FuzzFrame } from './bad-input-frames.js';

export type FuzzTransport = 'ws' | 'socket.io' | 'socket.io+batch';
export const FUZZ_TRANSPORTS: readonly FuzzTransport[] = ['ws', 'socket.io', 'socket.io+batch'];

export const JSON1_URI = 'http://sharejs.org/types/JSONv1';

/** A received JSON object; other values (and text that is not JSON) have `msg: null`. */
export type WireMessage = Record<string, unknown>;

export interface Received {
  raw: string;
  msg: WireMessage | null;
}

export interface CloseInfo {
  /** WebSocket close code, socket.io disconnect reason, or the refused handshake. */
  reason: string;
}

function isMessage(value: unknown): value is WireMessage {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `error` of a reply: absent (undefined), or its code (null when it has no string code). */
export function replyError(msg: WireMessage | null): { code: string | null; message: string } | undefined {
  if (!msg || !('error' in msg)) return undefined;
  const error = msg.error;
  const code = isMessage(error) && typeof error.code === 'string' ? error.code : null;
  const message = isMessage(error) && typeof error.message === 'string' ? error.message : '';
  return { code, message };
}

interface Waiter {
  match: (msg: WireMessage) => boolean;
  from: number;
  resolve: (msg: WireMessage) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  what: string;
}

export interface WireOptions {
  transport: FuzzTransport;
  url: string;
  /** Presented at connect; null: none (the server must refuse the connection). */
  token: string | null;
  /** The source id this client handshakes with and stamps on its ops (the user's `<tag>.…`). */
  src: string;
  /** How long connect + ShareDB's `init` may take. */
  timeoutMs?: number;
}

export class AuthedWire {
  readonly inbox: Received[] = [];
  closed: CloseInfo | null = null;
  /** SHAREDB_BATCH_EVENT packets received (socket.io+batch only). */
  batches = 0;
  private readonly waiters = new Set<Waiter>();
  private seq = 0;

  private constructor(
    readonly transport: FuzzTransport,
    readonly src: string,
    private readonly sio: Socket | null,
    private readonly ws: WebSocket | null,
  ) {}

  /**
   * Connects and waits for ShareDB's `init` message (the agent exists then). Rejects, with
   * the connection closed, when the server refuses it (no or a bad token).
   */
  static async open(options: WireOptions): Promise<AuthedWire> {
    const { transport, url, token, src } = options;
    let wire: AuthedWire;
    if (transport === 'ws') {
      const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
      const ws = new WebSocket(url.replace(/^http/, 'ws') + SHAREDB_WS_PATH, { headers });
      wire = new AuthedWire(transport, src, null, ws);
      ws.on('message', (data: Buffer, isBinary: boolean) =>
        wire.record(isBinary ? `<binary ${data.length}>` : data.toString('utf8'), undefined),
      );
      ws.on('unexpected-response', (req, res) => {
        wire.markClosed(`ws upgrade refused: HTTP ${res.statusCode}`);
        res.resume();
        req.destroy();
      });
      ws.on('close', (code: number, reason: Buffer) => wire.markClosed(`ws close ${code} ${reason.toString()}`));
      ws.on('error', (err: Error) => wire.markClosed(`ws error ${err.message}`));
    } else {
      const sio = io(url, {
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
        ...(token === null ? {} : { auth: { token } }),
        ...(transport === 'socket.io+batch' ? { query: { [BATCH_QUERY_PARAM]: '1' } } : {}),
      });
      wire = new AuthedWire(transport, src, sio, null);
      sio.on(SHAREDB_EVENT, (data: unknown) => wire.record(typeof data === 'string' ? data : JSON.stringify(data), data));
      sio.on(SHAREDB_BATCH_EVENT, (list: unknown) => {
        wire.batches++;
        if (!Array.isArray(list)) {
          wire.record(`<batch that is not an array: ${JSON.stringify(list)}>`, undefined);
          return;
        }
        for (const data of list) wire.record(typeof data === 'string' ? data : JSON.stringify(data), data);
      });
      sio.on('disconnect', (reason: string) => wire.markClosed(`socket.io ${reason}`));
      sio.on('connect_error', (err: Error) => {
        const data = (err as { data?: { code?: unknown } }).data;
        wire.markClosed(`socket.io connect_error ${String(data?.code ?? 'no code')}: ${err.message}`);
      });
    }
    try {
      await wire.waitFor((m) => m.a === 'init', 'ShareDB init message', 0, options.timeoutMs ?? 5_000);
    } catch (err) {
      await wire.close();
      throw err;
    }
    return wire;
  }

  /**
   * Sends one frame as is. Over socket.io it is the SHAREDB_EVENT argument (socket.io
   * serialises non-strings itself); over ws a Buffer is a binary frame, a string a text frame.
   */
  send(frame: unknown): void {
    if (this.sio) {
      this.sio.emit(SHAREDB_EVENT, frame);
    } else if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      if (Buffer.isBuffer(frame)) this.ws.send(frame, { binary: true });
      else this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    }
  }

  /** ws only: a text frame whose bytes need not be valid UTF-8. */
  sendRawText(bytes: Buffer): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes, { binary: false });
  }

  /** socket.io only: several arguments on SHAREDB_EVENT. */
  emitArgs(...args: unknown[]): void {
    this.sio?.emit(SHAREDB_EVENT, ...args);
  }

  /** Index of the next message to arrive; pass to `waitFor` to ignore earlier ones. */
  mark(): number {
    return this.inbox.length;
  }

  /**
   * The first received message (from index `from`) that `match` accepts, already here or
   * yet to come. Rejects when the connection closes first or after `timeoutMs`.
   */
  waitFor(match: (msg: WireMessage) => boolean, what: string, from = 0, timeoutMs = 5_000): Promise<WireMessage> {
    for (let i = from; i < this.inbox.length; i++) {
      const { msg } = this.inbox[i]!;
      if (msg && match(msg)) return Promise.resolve(msg);
    }
    if (this.closed) return Promise.reject(new Error(`connection closed (${this.closed.reason}) before ${what} over ${this.transport}`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        from,
        what,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new Error(`no ${what} over ${this.transport} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  /** Sends `frame` (JSON-encoded unless a string) and returns the first later message `match` accepts. */
  exchange(frame: unknown, match: (msg: WireMessage) => boolean, what: string, timeoutMs?: number): Promise<WireMessage> {
    const from = this.mark();
    this.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    return this.waitFor(match, what, from, timeoutMs);
  }

  async handshake(): Promise<void> {
    const reply = await this.exchange({ a: 'hs', id: this.src, protocol: 1, protocolMinor: 2 }, (m) => m.a === 'hs', 'handshake reply');
    if ('error' in reply) throw new Error(`handshake refused: ${JSON.stringify(reply.error)}`);
  }

  nextSeq(): number {
    return ++this.seq;
  }

  /** Matches the reply (ack or error) to this client's op on c/d with `seq`. */
  static opReply(c: string, d: string, seq: number): (m: WireMessage) => boolean {
    return (m) => m.a === 'op' && m.c === c && m.d === d && m.seq === seq && ('error' in m || !('op' in m || 'create' in m || 'del' in m));
  }

  /** Submits an op message (this client's src, a fresh seq) and returns the reply (ack or error). */
  submit(c: string, d: string, fields: Record<string, unknown>, timeoutMs?: number): Promise<WireMessage> {
    const seq = this.nextSeq();
    return this.exchange(
      { a: 'op', c, d, src: this.src, seq, ...fields },
      AuthedWire.opReply(c, d, seq),
      `reply to op ${c}/${d} seq ${seq}`,
      timeoutMs,
    );
  }

  async create(c: string, d: string, data: unknown): Promise<void> {
    const reply = await this.submit(c, d, { v: null, create: { type: JSON1_URI, data } });
    if ('error' in reply) throw new Error(`create ${c}/${d} failed: ${JSON.stringify(reply.error)}`);
  }

  async subscribe(c: string, d: string): Promise<WireMessage> {
    const reply = await this.exchange({ a: 's', c, d }, (m) => m.a === 's' && m.c === c && m.d === d, `subscribe ${c}/${d}`);
    if ('error' in reply) throw new Error(`subscribe ${c}/${d} failed: ${JSON.stringify(reply.error)}`);
    return reply;
  }

  /** Closes the connection (idempotent); resolves once it is closed. */
  async close(): Promise<void> {
    this.markClosed('closed by test');
    if (this.sio) {
      this.sio.removeAllListeners();
      this.sio.disconnect();
      return;
    }
    const ws = this.ws!;
    if (ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close();
    });
  }

  /** `value`: what socket.io decoded (undefined over ws: `raw` is parsed instead). */
  private record(raw: string, value: unknown): void {
    let msg: unknown = value;
    if (value === undefined || typeof value === 'string') {
      try {
        msg = JSON.parse(raw);
      } catch {
        msg = null;
      }
    }
    const index = this.inbox.push({ raw, msg: isMessage(msg) ? msg : null }) - 1;
    if (!isMessage(msg)) return;
    for (const waiter of this.waiters) {
      if (index >= waiter.from && waiter.match(msg)) {
        this.waiters.delete(waiter);
        clearTimeout(waiter.timer);
        waiter.resolve(msg);
      }
    }
  }

  private markClosed(reason: string): void {
    this.closed ??= { reason };
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`connection closed (${this.closed.reason}) while waiting for ${waiter.what} over ${this.transport}`));
    }
    this.waiters.clear();
  }
}

/** A stock ShareDB client over /sharedb presenting `token` in `?token=` (as a browser must). */
export function stockClientWithToken(url: string, token: string): { connection: Connection; close(): Promise<void> } {
  registerTandemTypes();
  const target = new URL(SHAREDB_WS_PATH, url.replace(/^http/, 'ws'));
  target.searchParams.set(TOKEN_QUERY_PARAM, token);
  const socket = new WebSocket(target.toString());
  socket.on('error', () => undefined); // ShareDB reports it too; the test sees the failed request
  // ws's WebSocket is what ShareDB's README passes; its typings differ from the DOM's.
  const connection = new ShareDbConnection(socket as unknown as ConstructorParameters<typeof ShareDbConnection>[0]);
  return {
    connection,
    close: async () => {
      connection.close();
      if (socket.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
        else socket.close();
      });
    },
  };
}

/** What the transport layer must do with a frame before ShareDB sees anything. */
export type Verdict =
  /** Refuse it with exactly this code; the connection stays open. */
  | { kind: 'refuse'; code: string; echo: Record<string, string | number> }
  /** Close the connection (ws: a text frame that is not UTF-8, RFC 6455 §8.1). */
  | { kind: 'close' }
  /** Hand it to ShareDB: what comes back depends on the message. */
  | { kind: 'sharedb' };

export interface FrameLimits {
  maxFrameBytes: number;
  /** Deepest nesting a frame may have (server: 2 × MAX_OP_DEPTH + the message envelope). */
  maxFrameDepth: number;
}

/** Deepest array/object nesting of valid JSON text, by scanning (JSON.parse results may be too deep to walk). */
function jsonTextDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') deepest = Math.max(deepest, ++depth);
    else if (c === ']' || c === '}') depth--;
  }
  return deepest;
}

/** The request fields a refusal echoes (as ShareDB echoes them) so a client can fail the request. */
function echoedFields(message: WireMessage): Record<string, string | number> {
  const fields: Record<string, string | number> = {};
  for (const [field, type] of [
    ['a', 'string'],
    ['c', 'string'],
    ['d', 'string'],
    ['src', 'string'],
    ['ch', 'string'],
    ['seq', 'number'],
    ['id', 'number'],
    ['v', 'number'],
  ] as const) {
    const value = message[field];
    if (typeof value === type && (type === 'number' || (value as string).length <= 1024)) fields[field] = value as string | number;
  }
  return fields;
}

function textVerdict(frame: unknown, limits: FrameLimits): Verdict {
  const refuse = (code: string, echo: Record<string, string | number> = {}): Verdict => ({ kind: 'refuse', code, echo });
  if (typeof frame !== 'string') return refuse(TandemErrorCode.BAD_FRAME);
  let parsed: unknown;
  let valid = true;
  try {
    parsed = JSON.parse(frame);
  } catch {
    valid = false;
  }
  const echo = valid && isMessage(parsed) ? echoedFields(parsed) : {};
  if (Buffer.byteLength(frame) > limits.maxFrameBytes) return refuse(TandemErrorCode.FRAME_TOO_LARGE, echo);
  if (!valid || !isMessage(parsed)) return refuse(TandemErrorCode.BAD_FRAME);
  if (jsonTextDepth(frame) > limits.maxFrameDepth) return refuse(TandemErrorCode.BAD_FRAME, echo);
  return { kind: 'sharedb' };
}

/** See Verdict. */
export function frameVerdict(frame: FuzzFrame, transport: FuzzTransport, limits: FrameLimits): Verdict {
  switch (frame.mode) {
    case 'bad-utf8':
      return { kind: 'close' };
    case 'args':
      // socket.io hands the server the event's first argument; the rest are ignored.
      return textVerdict((frame.payload as unknown[])[0], limits);
    case 'text':
      // Over ws the text goes out as UTF-8: a lone surrogate arrives as U+FFFD. socket.io
      // JSON-encodes it as an escape, which arrives intact.
      return textVerdict(
        transport === 'ws' && typeof frame.payload === 'string' ? Buffer.from(frame.payload, 'utf8').toString('utf8') : frame.payload,
        limits,
      );
    default:
      // 'binary' (a Buffer) and 'value' (any socket.io argument).
      return textVerdict(frame.payload, limits);
  }
}

/** Codes only the transport layer answers with (message-stream.ts); ShareDB never does. */
export const TRANSPORT_CODES: ReadonlySet<string> = new Set([TandemErrorCode.BAD_FRAME, TandemErrorCode.FRAME_TOO_LARGE]);
