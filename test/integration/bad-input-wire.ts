/**
 * A byte-level ShareDB client for bad-input tests: frames go out exactly as given (no
 * ShareDB client in between), every frame received is kept in `inbox`, and a close by the
 * server is recorded instead of thrown. One class for both transports:
 * - 'socket.io': a socket.io-client socket emitting on SHAREDB_EVENT;
 * - 'ws': a plain WebSocket on SHAREDB_WS_PATH.
 */
import WebSocket from 'ws';
import { io, type Socket } from 'socket.io-client';
import ShareDB from 'sharedb';
import { SHAREDB_EVENT, SHAREDB_WS_PATH } from '../../client/protocol.js';
import type { TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

export type TransportName = 'socket.io' | 'ws';
export const TRANSPORTS: readonly TransportName[] = ['socket.io', 'ws'];

export const JSON1_URI = 'http://sharejs.org/types/JSONv1';

/** Any JSON value as received; tests narrow the fields they look at. */
// biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON on purpose (bad input)
export type Json = any;

export interface WireError {
  code?: unknown;
  message?: unknown;
}

/** One received frame: the text as sent by the server and its parse (undefined if not JSON). */
export interface Received {
  raw: string;
  msg: Json;
}

export interface CloseInfo {
  /** WebSocket close code or socket.io disconnect reason. */
  reason: string;
  /** Index into `sent` of the last frame sent before the close was seen. */
  afterFrame: number;
}

let wireCounter = 0;

export class WireClient {
  readonly inbox: Received[] = [];
  readonly sent: unknown[] = [];
  closed: CloseInfo | null = null;
  /** Agent src set by our handshake; ShareDB stamps it on this client's ops. */
  readonly src = `wire-${process.pid}-${++wireCounter}`;
  private seq = 0;

  private constructor(
    readonly transport: TransportName,
    private readonly sio: Socket | null,
    private readonly ws: WebSocket | null,
  ) {}

  /** Connects and waits for ShareDB's legacy `init` message (the agent exists then). */
  static async open(transport: TransportName, url: string): Promise<WireClient> {
    let client: WireClient;
    if (transport === 'socket.io') {
      const sio = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
      client = new WireClient(transport, sio, null);
      sio.on(SHAREDB_EVENT, (data: unknown) => client.record(typeof data === 'string' ? data : JSON.stringify(data)));
      sio.on('disconnect', (reason: string) => client.markClosed(`socket.io ${reason}`));
      sio.on('connect_error', (err: Error) => client.markClosed(`socket.io connect_error ${err.message}`));
    } else {
      const ws = new WebSocket(url.replace(/^http/, 'ws') + SHAREDB_WS_PATH);
      client = new WireClient(transport, null, ws);
      ws.on('message', (data: Buffer, isBinary: boolean) => client.record(isBinary ? `<binary ${data.length}>` : data.toString('utf8')));
      ws.on('close', (code: number, reason: Buffer) => client.markClosed(`ws close ${code} ${reason.toString()}`));
      ws.on('error', (err: Error) => client.markClosed(`ws error ${err.message}`));
    }
    await client.waitFor((m) => m.a === 'init', 'ShareDB init message');
    return client;
  }

  get isOpen(): boolean {
    return this.closed === null;
  }

  /**
   * Sends one frame as is. Strings go out as text; over socket.io anything else is emitted
   * as the event's argument (socket.io serialises it), over ws a Buffer is a binary frame.
   */
  send(frame: unknown): void {
    this.sent.push(frame);
    if (this.sio) {
      this.sio.emit(SHAREDB_EVENT, frame);
    } else if (this.ws) {
      if (this.ws.readyState !== WebSocket.OPEN) return;
      if (Buffer.isBuffer(frame)) this.ws.send(frame, { binary: true });
      else this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    }
  }

  /** Sends a text frame whose bytes need not be valid UTF-8 (ws only). */
  sendRawText(bytes: Buffer): void {
    this.sent.push(bytes);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes, { binary: false });
  }

  /** socket.io only: emits several arguments on SHAREDB_EVENT. */
  emitArgs(...args: unknown[]): void {
    this.sent.push(args);
    this.sio?.emit(SHAREDB_EVENT, ...args);
  }

  /** Index of the next frame to arrive; pass to `waitFor` to ignore earlier ones. */
  mark(): number {
    return this.inbox.length;
  }

  /**
   * Waits for a received message (from index `from`) that `match` accepts. Fails at once
   * when the server closes the connection first.
   */
  async waitFor(match: (msg: Json) => boolean, what: string, from = 0, timeoutMs = 5_000): Promise<Json> {
    let found: { msg: Json } | undefined;
    let scanned = from;
    await waitFor(
      () => {
        for (; scanned < this.inbox.length; scanned++) {
          const { msg } = this.inbox[scanned]!;
          if (msg !== undefined && match(msg)) {
            found = { msg };
            return true;
          }
        }
        return this.closed !== null;
      },
      { timeoutMs, intervalMs: 2, what: `${what} over ${this.transport}` },
    );
    if (!found) throw new Error(`connection closed (${this.closed?.reason}) while waiting for ${what}`);
    return found.msg;
  }

  /**
   * Sends `frame` (a string as is, anything else JSON-encoded first) and returns the first
   * later message `match` accepts: its reply.
   */
  async exchange(frame: unknown, match: (msg: Json) => boolean, what: string, timeoutMs?: number): Promise<Json> {
    const from = this.mark();
    this.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    return this.waitFor(match, what, from, timeoutMs);
  }

  async handshake(): Promise<void> {
    const reply = await this.exchange({ a: 'hs', id: this.src, protocol: 1, protocolMinor: 2 }, (m) => m.a === 'hs', 'handshake reply');
    if (reply.error) throw new Error(`handshake refused: ${JSON.stringify(reply.error)}`);
  }

  nextSeq(): number {
    return ++this.seq;
  }

  /** Matches the reply (ack or error) to this client's op with `seq`. */
  static opReply(seq: number): (m: Json) => boolean {
    return (m) => m.a === 'op' && m.seq === seq && (m.error !== undefined || !('op' in m || 'create' in m || 'del' in m));
  }

  /** Submits an op message with a fresh seq and returns the reply (ack or error). */
  async submit(fields: Record<string, unknown>, timeoutMs?: number): Promise<Json> {
    const seq = typeof fields.seq === 'number' ? fields.seq : this.nextSeq();
    return this.exchange({ a: 'op', src: this.src, ...fields, seq }, WireClient.opReply(seq), `reply to op seq ${seq}`, timeoutMs);
  }

  async create(c: string, d: string, data: unknown): Promise<void> {
    const reply = await this.submit({ c, d, v: null, create: { type: JSON1_URI, data } });
    if (reply.error) throw new Error(`create ${c}/${d} failed: ${JSON.stringify(reply.error)}`);
  }

  /** Subscribes to a document; returns ShareDB's reply (snapshot in `data`). */
  async subscribe(c: string, d: string): Promise<Json> {
    const reply = await this.exchange({ a: 's', c, d }, (m) => m.a === 's' && m.c === c && m.d === d, `subscribe ${c}/${d}`);
    if (reply.error) throw new Error(`subscribe ${c}/${d} failed: ${JSON.stringify(reply.error)}`);
    return reply;
  }

  async close(): Promise<void> {
    if (this.sio) {
      this.sio.removeAllListeners();
      this.sio.disconnect();
      this.closed ??= { reason: 'closed by test', afterFrame: this.sent.length - 1 };
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

  private record(raw: string): void {
    let msg: Json;
    try {
      msg = JSON.parse(raw);
    } catch {
      msg = undefined;
    }
    this.inbox.push({ raw, msg });
  }

  private markClosed(reason: string): void {
    this.closed ??= { reason, afterFrame: this.sent.length - 1 };
  }
}

export interface StoredDoc {
  v: number;
  type: string | null;
  data: unknown;
  /** Number of ops in the op log (must equal v for an untouched, consistent doc). */
  ops: number;
}

/** The store's own view of a document: snapshot straight from the DB adapter, plus op count. */
export async function storedDoc(server: TestServer, c: string, d: string): Promise<StoredDoc> {
  const db = server.backend.db;
  const snapshot = await new Promise<ShareDB.Snapshot>((resolve, reject) =>
    db.getSnapshot(c, d, null, {}, (err: Error | null, s?: ShareDB.Snapshot) => (err ? reject(err) : resolve(s!))),
  );
  const ops = await new Promise<unknown[]>((resolve, reject) =>
    db.getOps(c, d, 0, null, {}, (err: Error | null, list?: unknown[]) => (err ? reject(err) : resolve(list ?? []))),
  );
  return { v: snapshot.v, type: snapshot.type, data: structuredClone(snapshot.data), ops: ops.length };
}

type LogMethod = (...args: unknown[]) => void;

/**
 * ShareDB logs every error reply's stack (info) and every agent it closes (warn) through its
 * own console logger. Tests swap in recorders: quiet output, and a record of agent closes.
 */
export function captureShareDbLogs(): { warnings: unknown[][]; errors: unknown[][]; restore(): void } {
  const logger = ShareDB.logger as unknown as Record<'info' | 'warn' | 'error', LogMethod> & {
    setMethods(m: Partial<Record<'info' | 'warn' | 'error', LogMethod>>): void;
  };
  const saved = { info: logger.info, warn: logger.warn, error: logger.error };
  const warnings: unknown[][] = [];
  const errors: unknown[][] = [];
  logger.setMethods({
    info: () => {},
    warn: (...args: unknown[]) => warnings.push(args),
    error: (...args: unknown[]) => errors.push(args),
  });
  return { warnings, errors, restore: () => logger.setMethods(saved) };
}

/** A short printable form of a received message (deep ones cannot be re-stringified). */
export function preview(msg: unknown, max = 300): string {
  try {
    const text = JSON.stringify(msg) ?? String(msg);
    return text.length > max ? `${text.slice(0, max)}…` : text;
  } catch (err) {
    return `<unprintable: ${(err as Error).message}>`;
  }
}

/** JSON text of `[[[…1…]]]` nested `depth` levels, built as text: JSON.stringify would overflow. */
export function deepArrayText(depth: number): string {
  return '['.repeat(depth) + '1' + ']'.repeat(depth);
}

/** GET /healthz; resolves with the HTTP status. */
export async function healthz(url: string): Promise<number> {
  const res = await fetch(`${url}/healthz`);
  await res.arrayBuffer();
  return res.status;
}
