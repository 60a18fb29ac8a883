/**
 * Byte-level clients for the connection attacks, each able to stop reading on purpose:
 * - `RawShareDb`: ShareDB's protocol over a plain WebSocket at /sharedb;
 * - `EngineWs`: socket.io spoken by hand over engine.io's WebSocket transport;
 * - `PollingSession`: socket.io spoken by hand over engine.io long-polling (plain HTTP).
 * Each can bind a local loopback address (127.0.0.x), so an attacker and the clients it
 * must not hurt come from different addresses; all traffic goes to the server's 127.0.0.1.
 */
import { request } from 'node:http';
import WebSocket from 'ws';
import { SHAREDB_BATCH_EVENT, SHAREDB_EVENT, SHAREDB_WS_PATH } from '../../client/protocol.js';
import { waitFor } from '../helpers/wait.js';

/** A ShareDB message as received (parsed). */
export type Message = Record<string, unknown>;

/** `{code}` of a reply's error, or undefined. */
export function errorCode(message: Message): string | undefined {
  const error = message.error as { code?: unknown } | undefined;
  return typeof error?.code === 'string' ? error.code : undefined;
}

export const HANDSHAKE = { a: 'hs', id: null, protocol: 1, protocolMinor: 2 } as const;

export interface WireOptions {
  /** Local loopback address to connect from (default: the kernel's choice, 127.0.0.1). */
  localAddress?: string;
}

export interface CloseInfo {
  code: number;
  at: number;
}

function wsUrl(url: string, path: string): string {
  return url.replace(/^http/, 'ws') + path;
}

/** What is common to the two WebSocket clients. */
abstract class WireSocket {
  readonly messages: Message[] = [];
  /** Received bytes (all frames, parsed or not). */
  receivedBytes = 0;
  readonly openedAt = Date.now();
  closedWith: CloseInfo | null = null;
  readonly closed: Promise<CloseInfo>;

  constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.once('close', (code) => {
        this.closedWith = { code, at: Date.now() };
        resolve(this.closedWith);
      });
    });
    ws.on('error', () => undefined);
  }

  /** Stops reading from the TCP socket: the server's writes pile up in the kernel, then in the server. */
  pauseReading(): void {
    this.ws.pause();
  }

  resumeReading(): void {
    this.ws.resume();
  }

  /** Waits for a message matching `match`, received from now on or already. */
  async next(match: (message: Message) => boolean, what: string, timeoutMs = 10_000): Promise<Message> {
    return (await waitFor(() => this.messages.find(match), { timeoutMs, what }))!;
  }

  /** Closes from the client side and waits for the close. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.terminate();
    await this.closed;
  }
}

/** ShareDB's protocol over a plain WebSocket at /sharedb. */
export class RawShareDb extends WireSocket {
  /**
   * Opens a /sharedb WebSocket. `autoPong: false` makes a peer that never answers pings;
   * `handshake: false` one that never sends anything.
   */
  static async open(url: string, options: WireOptions & { autoPong?: boolean; handshake?: boolean } = {}): Promise<RawShareDb> {
    const ws = new WebSocket(wsUrl(url, SHAREDB_WS_PATH), { localAddress: options.localAddress, autoPong: options.autoPong ?? true });
    const client = new RawShareDb(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => {
        req.destroy();
        reject(new Error(`upgrade refused with ${res.statusCode}`));
      });
    });
    if (options.handshake ?? true) {
      client.send(HANDSHAKE);
      await client.next((m) => m.a === 'hs', 'handshake reply');
    }
    return client;
  }

  constructor(ws: WebSocket) {
    super(ws);
    ws.on('message', (data: Buffer) => {
      this.receivedBytes += data.length;
      try {
        this.messages.push(JSON.parse(data.toString('utf8')) as Message);
      } catch {
        // not JSON: counted only
      }
    });
  }

  send(message: object | string): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }
}

/** The answer to a refused /sharedb upgrade. */
export interface RefusedUpgrade {
  status: number;
  body: string;
}

/** Attempts a /sharedb upgrade that should be refused; resolves with the HTTP answer. */
export function refusedUpgrade(url: string, options: WireOptions = {}): Promise<RefusedUpgrade> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(url, SHAREDB_WS_PATH), { localAddress: options.localAddress });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('upgrade was accepted'));
    });
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    ws.on('error', () => undefined);
  });
}

/** socket.io's encoding of one SHAREDB_EVENT from a client: the message travels as JSON text. */
export function socketIoShareDbPacket(message: object | string): string {
  return `42${JSON.stringify([SHAREDB_EVENT, typeof message === 'string' ? message : JSON.stringify(message)])}`;
}

/** ShareDB messages in one socket.io packet from the server (event or batch), else null. */
function shareDbMessagesOf(packet: string): Message[] | null {
  if (!packet.startsWith('42')) return null;
  const [event, payload] = JSON.parse(packet.slice(2)) as [string, unknown];
  if (event === SHAREDB_EVENT) return [payload as Message];
  if (event === SHAREDB_BATCH_EVENT) return payload as Message[];
  return null;
}

/** The `data` of a socket.io CONNECT_ERROR packet (`44{...}`), else null. */
export function connectErrorOf(packet: string): { message?: string; data?: { code?: string } } | null {
  return packet.startsWith('44') ? (JSON.parse(packet.slice(2)) as { message?: string; data?: { code?: string } }) : null;
}

/** socket.io over engine.io's WebSocket transport, spoken by hand. */
export class EngineWs extends WireSocket {
  /** CONNECT_ERROR data, if the server refused the socket.io connection. */
  connectError: { message?: string; data?: { code?: string } } | null = null;
  private connected = false;

  /**
   * Opens the engine.io WebSocket and joins socket.io's default namespace; resolves once
   * joined, or refused (see `connectError`).
   */
  static async open(url: string, options: WireOptions & { batch?: boolean } = {}): Promise<EngineWs> {
    const query = `EIO=4&transport=websocket${options.batch ? '&tandemBatch=1' : ''}`;
    const ws = new WebSocket(wsUrl(url, `/socket.io/?${query}`), { localAddress: options.localAddress });
    const client = new EngineWs(ws);
    await waitFor(() => client.connected || client.connectError !== null || client.closedWith !== null, { what: 'socket.io connect' });
    return client;
  }

  constructor(ws: WebSocket) {
    super(ws);
    ws.on('message', (data: Buffer) => {
      this.receivedBytes += data.length;
      const packet = data.toString('utf8');
      if (packet.startsWith('0')) ws.send('40');
      else if (packet === '2') ws.send('3');
      else if (packet.startsWith('40')) this.connected = true;
      else if (packet.startsWith('44')) this.connectError = connectErrorOf(packet);
      else this.messages.push(...(shareDbMessagesOf(packet) ?? []));
    });
  }

  get isConnected(): boolean {
    return this.connected && this.closedWith === null;
  }

  /** Emits one ShareDB message (or raw JSON text) on SHAREDB_EVENT. */
  send(message: object | string): void {
    this.ws.send(socketIoShareDbPacket(message));
  }
}

interface HttpAnswer {
  status: number;
  body: string;
}

function http(method: 'GET' | 'POST', url: string, body: string | null, localAddress: string | undefined): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, localAddress, agent: false, headers: body === null ? {} : { 'content-type': 'text/plain;charset=UTF-8' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

/** engine.io's long-polling payload separator. */
const RECORD_SEPARATOR = '\x1e';

/** socket.io over engine.io long-polling, spoken by hand: the client decides when to GET. */
export class PollingSession {
  private constructor(
    private readonly base: string,
    private readonly localAddress: string | undefined,
  ) {}

  /**
   * Opens a session and joins socket.io's default namespace (one POST and one GET).
   * Resolves with the session, or with the CONNECT_ERROR data when the server refused.
   */
  static async open(
    url: string,
    options: WireOptions = {},
  ): Promise<{ session: PollingSession; connectError: ReturnType<typeof connectErrorOf> }> {
    const handshake = await http('GET', `${url}/socket.io/?EIO=4&transport=polling`, null, options.localAddress);
    if (handshake.status !== 200 || !handshake.body.startsWith('0'))
      throw new Error(`engine.io handshake failed: ${handshake.status} ${handshake.body}`);
    const { sid } = JSON.parse(handshake.body.slice(1)) as { sid: string };
    const session = new PollingSession(`${url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, options.localAddress);
    await session.post(['40']);
    const packets = await session.poll();
    const refused = packets.map(connectErrorOf).find((e) => e !== null) ?? null;
    if (!refused && !packets.some((p) => p.startsWith('40'))) throw new Error(`no socket.io CONNECT answer: ${packets.join(' | ')}`);
    return { session, connectError: refused };
  }

  /** Sends packets in one POST; resolves with the HTTP status (200 "ok", 400 once the session is gone). */
  async post(packets: string[]): Promise<number> {
    return (await http('POST', this.base, packets.join(RECORD_SEPARATOR), this.localAddress)).status;
  }

  /** One GET: the packets the server had for this session. */
  async poll(): Promise<string[]> {
    const answer = await http('GET', this.base, null, this.localAddress);
    if (answer.status !== 200) throw new Error(`poll answered ${answer.status}: ${answer.body}`);
    return answer.body.split(RECORD_SEPARATOR);
  }
}
