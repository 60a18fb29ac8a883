import { io, type Socket, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import {
  AUTH_REFRESH_EVENT,
  BATCH_QUERY_PARAM,
  DRAIN_EVENT,
  PROTOCOL_QUERY_PARAM,
  PROTOCOL_VERSION,
  SHAREDB_BATCH_EVENT,
  SHAREDB_EVENT,
  TandemError,
  TandemErrorCode,
  type WireError,
} from './protocol.js';

/** WebSocket readyState values, as ShareDB's Connection reads them. */
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

export interface ReconnectPolicy {
  /** First delay after a lost connection, in ms; doubled per failed attempt (with jitter). */
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RECONNECT: Readonly<ReconnectPolicy> = Object.freeze({ initialDelayMs: 100, maxDelayMs: 5_000 });

/**
 * Handshake refusals that no retry can fix: the server does not speak this SDK's protocol
 * version. Reconnecting would only repeat the refusal forever, so the shim stops instead.
 */
const FINAL_REFUSALS: ReadonlySet<string> = new Set([TandemErrorCode.PROTOCOL_VERSION]);

export interface SocketShimOptions {
  /** One or several server URLs; on a lost connection the next one is tried (round-robin). */
  urls: readonly string[];
  /** socket.io transports, e.g. ['polling'] to force long-polling. Default: websocket first. */
  transports?: ('polling' | 'websocket' | 'webtransport')[];
  /** socket.io path on the server. Default '/socket.io'. */
  path?: string;
  reconnect?: Partial<ReconnectPolicy>;
  /** Extra socket.io options (auth, query, extraHeaders…). */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  /**
   * Start held offline (no connection attempt) until `goOnline()`: a client restarting
   * from its offline outbox can then show and edit its documents before syncing.
   */
  startOffline?: boolean;
  /**
   * The handshake's `auth` payload, asked before every connection attempt (so a reconnect
   * carries a fresh token). `refused` is the previous attempt's refusal code, if any.
   */
  handshakeAuth?: (refused: string | null) => Promise<Record<string, unknown>>;
  /**
   * A connection attempt was refused or failed (a code from the server, or a transport error).
   * `final` is true when the shim gives up for good: every server URL refused this SDK's
   * protocol version (TANDEM_PROTOCOL_VERSION); the shim then closes with reason 'stopped'.
   */
  onConnectError?: (error: TandemError, final: boolean) => void;
}

/**
 * Presents socket.io to ShareDB's Connection as the WebSocket-like object it wants.
 *
 * Reconnection is ours, not socket.io's, for two reasons: the shim rotates through several
 * server URLs, and socket.io does not reconnect after a server-side disconnect (which is
 * how an instance drains). Sends while offline are dropped, never buffered: ShareDB resends
 * pending ops itself after its new handshake, and a buffered copy would arrive before that
 * handshake (STACK-NOTES, share/sharedb#150).
 */
export class SocketIoShim {
  /** Read by ShareDB: 0 connecting, 1 open, 3 closed for good. */
  readyState: number = CONNECTING;
  onopen: (() => void) | null = null;
  /**
   * ShareDB's Connection accepts `data` as JSON text or an already-parsed object; the server
   * sends objects over socket.io (one encoding instead of JSON text inside JSON).
   */
  onmessage: ((event: { data: string | object }) => void) | null = null;
  onclose: ((reason: string) => void) | null = null;
  onerror: ((err: unknown) => void) | null = null;

  private socket: Socket | null = null;
  private urlIndex = 0;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** True while the application asked to stay offline (simulated or real). */
  private held = false;
  private closed = false;
  /** The code of the last refused handshake, handed to `handshakeAuth` on the next attempt. */
  private refusedWith: string | null = null;
  /**
   * URLs that refused in a row with a final code. With several URLs one instance of a
   * rolling upgrade may refuse while the others still accept: the shim gives up only once
   * each of them has refused, without a connection or another failure in between.
   */
  private readonly finalRefusals = new Set<string>();
  private readonly policy: ReconnectPolicy;

  constructor(private readonly options: SocketShimOptions) {
    if (options.urls.length === 0) throw new Error('SocketIoShim needs at least one URL');
    this.policy = { ...DEFAULT_RECONNECT, ...options.reconnect };
    if (options.startOffline) {
      // CLOSED (not CONNECTING) so ShareDB starts in 'disconnected', the state it expects
      // before an `onopen`.
      this.held = true;
      this.readyState = CLOSED;
      return;
    }
    this.open();
  }

  /** The URL of the current (or last tried) server. */
  get url(): string {
    return this.options.urls[this.urlIndex % this.options.urls.length]!;
  }

  /** socket.io's transport name while connected ('websocket' or 'polling'). */
  get transport(): string | null {
    return this.socket?.io.engine?.transport?.name ?? null;
  }

  send(data: string): void {
    if (this.readyState !== OPEN || !this.socket?.connected) return;
    this.socket.emit(SHAREDB_EVENT, data);
  }

  /** Closes for good (ShareDB's Connection.close() calls this). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearRetry();
    this.dropSocket();
    this.readyState = CLOSED;
    this.onclose?.('closed');
  }

  /** Disconnects and stays offline until `goOnline()`; pending edits stay with ShareDB. */
  goOffline(): void {
    if (this.closed || this.held) return;
    this.held = true;
    this.clearRetry();
    const wasOpen = this.readyState === OPEN;
    this.dropSocket();
    this.readyState = CONNECTING;
    if (wasOpen) this.onclose?.('offline');
  }

  goOnline(): void {
    if (this.closed || !this.held) return;
    this.held = false;
    this.attempt = 0;
    this.open();
  }

  get offline(): boolean {
    return this.held;
  }

  /**
   * Hands the server a fresh token on the open connection. Resolves true once the server
   * took it; false when there is no connection or it refused (the caller reconnects).
   */
  async sendAuth(payload: Record<string, unknown>, timeoutMs = 10_000): Promise<boolean> {
    const socket = this.socket;
    if (!socket?.connected) return false;
    try {
      const answer = (await socket.timeout(timeoutMs).emitWithAck(AUTH_REFRESH_EVENT, payload.token)) as {
        ok?: boolean;
        error?: WireError;
      };
      return answer?.ok === true;
    } catch {
      return false;
    }
  }

  /** Drops the current connection and opens a new one at once (a new handshake and token). */
  reconnect(): void {
    if (this.closed || this.held || !this.socket) return;
    this.lost(this.socket, 'reauthenticate');
  }

  private open(): void {
    if (this.closed || this.held) return;
    const socketOptions = this.options.socketOptions;
    const handshakeAuth = this.options.handshakeAuth;
    const socket = io(this.url, {
      ...socketOptions,
      ...(handshakeAuth
        ? {
            auth: (callback: (payload: object) => void) => {
              // A failed getToken() still connects, without a token: the server's refusal
              // is then reported like any other, and the next attempt asks again.
              handshakeAuth(this.refusedWith).then(callback, () => callback({}));
            },
          }
        : {}),
      // Accept the server's per-turn message batches (fewer packets on both ends), and say
      // which protocol version this SDK speaks (an incompatible server refuses it at once).
      query: {
        ...(socketOptions?.query as Record<string, string> | undefined),
        [BATCH_QUERY_PARAM]: '1',
        [PROTOCOL_QUERY_PARAM]: String(PROTOCOL_VERSION),
      },
      path: this.options.path ?? '/socket.io',
      transports: this.options.transports ?? ['websocket', 'polling'],
      reconnection: false,
      forceNew: true,
    });
    this.socket = socket;
    socket.on('connect', () => {
      this.attempt = 0;
      this.refusedWith = null;
      this.finalRefusals.clear();
      this.readyState = OPEN;
      this.onopen?.();
    });
    socket.on(SHAREDB_EVENT, (data: string | object) => this.onmessage?.({ data }));
    socket.on(SHAREDB_BATCH_EVENT, (batch: unknown) => {
      if (!Array.isArray(batch)) return;
      // onmessage may close this socket (ShareDB on a fatal error): stop delivering then.
      for (const data of batch as Array<string | object>) {
        if (socket !== this.socket) return;
        this.onmessage?.({ data });
      }
    });
    socket.on(DRAIN_EVENT, () => {
      // The instance is going away: move on to the next URL straight after the disconnect.
      this.urlIndex++;
      this.attempt = 0;
    });
    socket.on('disconnect', (reason) => this.lost(socket, reason));
    socket.on('connect_error', (err) => {
      const data = (err as { data?: { code?: unknown } }).data;
      const code = typeof data?.code === 'string' ? data.code : null;
      this.refusedWith = code;
      if (code !== null && FINAL_REFUSALS.has(code)) this.finalRefusals.add(this.url);
      else this.finalRefusals.clear();
      const final = this.options.urls.every((url) => this.finalRefusals.has(url));
      this.options.onConnectError?.(new TandemError(code ?? TandemErrorCode.CONNECT_FAILED, err.message), final);
      this.onerror?.(err);
      if (final) this.stop(socket);
      else this.lost(socket, 'connect error');
    });
  }

  private lost(socket: Socket, reason: string): void {
    if (socket !== this.socket) return;
    const wasOpen = this.readyState === OPEN;
    this.dropSocket();
    this.readyState = CONNECTING;
    if (wasOpen) this.onclose?.(reason);
    if (this.closed || this.held) return;
    if (this.options.urls.length > 1 && !wasOpen) this.urlIndex++;
    const delay = Math.min(this.policy.maxDelayMs, this.policy.initialDelayMs * 2 ** this.attempt);
    this.attempt++;
    // Jitter spreads reconnects of many clients after an instance dies.
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = null;
        this.open();
      },
      delay * (0.5 + Math.random() / 2),
    );
  }

  /**
   * Gives up for good after a final refusal: no more attempts, and ShareDB's Connection goes
   * to its 'stopped' state ("closed by the server, do not reconnect").
   */
  private stop(socket: Socket): void {
    if (socket !== this.socket || this.closed) return;
    this.closed = true;
    this.clearRetry();
    this.dropSocket();
    this.readyState = CLOSED;
    this.onclose?.('stopped');
  }

  private dropSocket(): void {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.removeAllListeners();
    socket.disconnect();
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}
