import type { Doc as JsonValue } from 'ot-json1';
import { connectSocket, type ConnectOptions, type SocketConnection } from './connect.js';
import { DocHandle, type DocContext, type DocOptions } from './doc-handle.js';
import { toTandemError } from './doc-sync.js';
import { Emitter } from './emitter.js';
import { attributeUnmatchedErrors } from './frame-errors.js';
import { defaultLockManager, type LockManagerLike } from './offline/doc-lock.js';
import { keyString, type OutboxStore } from './offline/outbox-store.js';
import { TandemError, TandemErrorCode } from './protocol.js';
import { connectionInternals } from './sharedb-internals.js';
import { sourceTagOf, TokenSource, type GetToken } from './token-source.js';

export interface ClientOptions extends ConnectOptions {
  /**
   * Durable offline outbox (`IndexedDbOutboxStore` in browsers, `SqliteOutboxStore` from
   * 'client/node' in Node). Without one, unacknowledged edits live in memory only.
   */
  outbox?: OutboxStore | null;
  /** Web Locks used to give each document's outbox one owner tab. Default `navigator.locks`. */
  locks?: LockManagerLike | null;
  /** Delay before saving changes that hold nothing back (remote ops, acks). Default 25 ms. */
  saveDelayMs?: number;
  /** First delay before resending an op after a transient server failure. Default 500 ms. */
  retryDelayMs?: number;
  /** Transient failures of one op before the document is reported stalled. Default 5. */
  maxRetries?: number;
  /**
   * For servers with authentication: returns a JWT for the current user. Called before
   * each connection, ahead of the token's expiry (the fresh token is handed over on the open
   * connection), and when the server reports TANDEM_TOKEN_EXPIRED or TANDEM_UNAUTHENTICATED.
   * One client serves one user: its op ids carry the user's tag (`sub`).
   */
  getToken?: GetToken;
}

/**
 * 'connecting': handshaking; 'online': syncing; 'offline': not connected (retrying unless
 * held); 'closed': by `close()`, or for good because the server refused this SDK's protocol
 * version (the 'error' event carried TANDEM_PROTOCOL_VERSION first; see `refused`).
 */
export type ConnectionState = 'connecting' | 'online' | 'offline' | 'closed';

export type ClientEvents = {
  state: [state: ConnectionState];
  error: [error: TandemError];
};

function randomId(): string {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === 'function') return c.randomUUID();
  // randomUUID needs a secure context in browsers; getRandomValues does not.
  const bytes = c.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** ShareDB connection states → the SDK's. */
function mapState(state: string): ConnectionState {
  switch (state) {
    case 'connected':
      return 'online';
    case 'connecting':
      return 'connecting';
    case 'disconnected':
      return 'offline';
    // 'stopped': the shim gave up after a final refusal; 'closed': close().
    default:
      return 'closed';
  }
}

/**
 * A Tandem client: one socket.io connection, typed document handles, connection state.
 * Create it with `connect()`.
 */
export class TandemClient extends Emitter<ClientEvents> {
  private sourceId: string | null = null;
  /** Sent in the handshake: lets this run's reconnects keep its source ids (never shown to others). */
  private readonly sourceKey = `${randomId()}${randomId()}`;
  private readonly tokens: TokenSource | null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private reauthenticating: Promise<void> | null = null;
  /** Connection failures (by code) reported since the client was last online. */
  private readonly reportedFailures = new Set<string>();
  private readonly socket: SocketConnection;
  private readonly docs = new Map<string, DocHandle<unknown>>();
  private readonly ctx: DocContext;
  private current: ConnectionState;
  private closing: Promise<void> | null = null;
  private finalRefusal: TandemError | null = null;

  /** @internal Use `connect()`. */
  constructor(options: ClientOptions) {
    super();
    this.tokens = options.getToken ? new TokenSource(options.getToken) : null;
    this.socket = connectSocket({
      ...options,
      handshakeAuth: (refused) => this.handshakeAuth(refused),
      onConnectError: (error, final) => this.connectFailed(error, final),
    });
    const connection = this.socket.connection;
    const internals = connectionInternals(connection);
    // Without auth the id is known now; with auth once the first token names the user.
    if (!this.tokens) this.adoptSourceId(randomId());
    this.current = mapState(connection.state);
    connection.on('state', (state) => this.setState(mapState(state)));
    connection.on('error', (err) => this.emitError(toTandemError(err)));
    attributeUnmatchedErrors(connection, (error) => this.emitError(error));
    this.ctx = {
      connection,
      outbox: options.outbox ?? null,
      locks: options.locks === undefined ? defaultLockManager() : options.locks,
      saveDelayMs: options.saveDelayMs ?? 25,
      retryDelayMs: options.retryDelayMs ?? 500,
      maxRetries: options.maxRetries ?? 5,
      identity: { src: () => this.sourceId, nextSeq: () => internals.seq++ },
      reauthenticate: () => this.reauthenticate(),
      randomId,
      watchConnection: (listener) => {
        let online = this.current === 'online';
        return this.on('state', (state) => {
          if ((state === 'online') === online) return;
          online = state === 'online';
          listener(online);
        });
      },
      released: (collection, id) => this.docs.delete(keyString({ collection, id })),
    };
  }

  /**
   * This client's op source id (ShareDB's `src`), fresh per run; with `getToken`, prefixed
   * by the user's tag and known once the first token arrived (empty until then). The server
   * adopts it at the handshake, so op ids can be assigned — and saved — before connecting.
   */
  get id(): string {
    return this.sourceId ?? '';
  }

  get state(): ConnectionState {
    return this.current;
  }

  /**
   * The refusal that made this client stop connecting for good (TANDEM_PROTOCOL_VERSION: the
   * server does not speak this SDK's protocol version; its message names the one it does),
   * or null. Once set, `state` is 'closed' and `whenOnline()` rejects with it.
   */
  get refused(): TandemError | null {
    return this.finalRefusal;
  }

  /** socket.io's transport while connected ('websocket' or 'polling'), else null. */
  get transport(): string | null {
    return this.socket.shim.transport;
  }

  /**
   * The handle of document `collection/id`, opened on first use; while it is open the
   * same handle is returned (and `options` of later calls are ignored). Reopening a
   * document whose handle is still closing throws: await its `close()` first.
   */
  doc<T = JsonValue>(collection: string, id: string, options: DocOptions<T> = {}): DocHandle<T> {
    if (this.closing) throw new TandemError(TandemErrorCode.CLOSED, 'Tandem client is closed');
    const key = keyString({ collection, id });
    const open = this.docs.get(key);
    if (open?.closed) {
      throw new TandemError(TandemErrorCode.CLOSED, `document ${collection}/${id} is closing; await its close() before opening it again`);
    }
    // One handle per document: T is the caller's view of the same data.
    if (open) return open as DocHandle<T>;
    const handle = new DocHandle<T>(this.ctx, collection, id, options);
    this.docs.set(key, handle as DocHandle<unknown>);
    return handle;
  }

  /** Disconnects and stays offline until `goOnline()`; edits continue locally. */
  goOffline(): void {
    this.socket.shim.goOffline();
    this.setState(mapState(this.socket.connection.state));
  }

  /** Reconnects after `goOffline()` (or `startOffline`). */
  goOnline(): void {
    this.socket.shim.goOnline();
  }

  /** True while held offline by `goOffline()`/`startOffline`. */
  get heldOffline(): boolean {
    return this.socket.shim.offline;
  }

  /**
   * Resolves once online; rejects if the client closes first — with the server's refusal
   * (`refused`) when that is why, so a caller awaiting it is not left waiting forever.
   */
  whenOnline(): Promise<void> {
    if (this.current === 'online') return Promise.resolve();
    if (this.finalRefusal) return Promise.reject(this.finalRefusal);
    return new Promise((resolve, reject) => {
      const off = this.on('state', (state) => {
        if (state === 'online') {
          off();
          resolve();
        } else if (state === 'closed') {
          off();
          reject(this.finalRefusal ?? new Error('Tandem client closed before it came online'));
        }
      });
    });
  }

  /** Closes every document (saving their outbox records) and the connection. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.docs.values()].map((handle) => handle.close()));
      if (this.refreshTimer) clearTimeout(this.refreshTimer);
      this.refreshTimer = null;
      this.socket.close();
      this.setState('closed');
      this.removeAllListeners();
    })();
    return this.closing;
  }

  private setState(state: ConnectionState): void {
    if (state === 'online') this.reportedFailures.clear();
    if (state === this.current) return;
    this.current = state;
    this.emit('state', state);
  }

  /**
   * A connection attempt failed: reported once per kind of failure until the client is
   * online again (it keeps retrying meanwhile), and the state says 'offline' instead of
   * 'connecting' forever. A draining server is not a failure: the client moves on. After a
   * final refusal (the shim stopped) the state turns 'closed' instead.
   */
  private connectFailed(error: TandemError, final: boolean): void {
    if (this.closing) return;
    if (final) {
      this.finalRefusal = error;
      // Nothing will connect any more: no token refresh either.
      if (this.refreshTimer) clearTimeout(this.refreshTimer);
      this.refreshTimer = null;
    } else if (error.code === TandemErrorCode.SHUTTING_DOWN) {
      return;
    }
    if (!this.reportedFailures.has(error.code)) {
      this.reportedFailures.add(error.code);
      this.emitError(error);
    }
    // After a final refusal ShareDB's 'stopped' turns the state 'closed' right after this.
    if (!final && this.current === 'connecting') this.setState('offline');
  }

  private adoptSourceId(id: string): void {
    this.sourceId = id;
    // Before the handshake that follows: ShareDB sends this id in it and stamps ops with it.
    connectionInternals(this.socket.connection).id = id;
    for (const handle of this.docs.values()) handle.identityReady();
  }

  /** The socket.io handshake payload: a token (fresh after a refusal) and this run's key. */
  private async handshakeAuth(refused: string | null): Promise<Record<string, unknown>> {
    const payload: Record<string, unknown> = { sourceKey: this.sourceKey };
    if (!this.tokens) return payload;
    try {
      payload.token = refused === TandemErrorCode.UNAUTHENTICATED ? await this.tokens.refresh() : await this.tokens.current();
    } catch (err) {
      this.emitError(new TandemError(TandemErrorCode.UNAUTHENTICATED, `getToken() failed: ${(err as Error).message}`));
      throw err;
    }
    const sub = this.tokens.sub;
    if (this.sourceId === null && sub !== null) this.adoptSourceId(`${sourceTagOf(sub)}.${randomId()}`);
    this.scheduleRefresh();
    return payload;
  }

  /** Refreshes the token a little before it expires, on the open connection. */
  private scheduleRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const expiresAt = this.tokens?.expiresAt;
    if (expiresAt == null || this.closing) return;
    const left = expiresAt - Date.now();
    const lead = Math.min(60_000, Math.max(1_000, left / 5));
    // At least a second apart: a getToken() that keeps handing back a stale token must not spin.
    this.refreshTimer = setTimeout(
      () => {
        this.refreshTimer = null;
        if (this.current === 'online') void this.reauthenticate().catch(() => undefined);
      },
      Math.max(1_000, left - lead),
    );
  }

  /**
   * Gets a new token and hands it to the server on the open connection; if that fails,
   * reconnects (the handshake carries the new token). Resolves once online with it.
   */
  private reauthenticate(): Promise<void> {
    const tokens = this.tokens;
    if (!tokens) return Promise.resolve();
    this.reauthenticating ??= (async () => {
      try {
        const token = await tokens.refresh();
        this.scheduleRefresh();
        if (!(await this.socket.shim.sendAuth({ token }))) this.socket.shim.reconnect();
        await this.whenOnline();
      } finally {
        this.reauthenticating = null;
      }
    })();
    return this.reauthenticating;
  }

  private emitError(error: TandemError): void {
    if (!this.emit('error', error)) console.warn(`Tandem client: ${error.code}: ${error.message}`);
  }
}

/** Connects to a Tandem server (see `ClientOptions`); returns at once, connecting in the background. */
export function connect(options: ClientOptions): TandemClient {
  return new TandemClient(options);
}
