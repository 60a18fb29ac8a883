/**
 * The load tool's one seam to Tandem's client SDK: every simulated client is a
 * `connect({url, getToken})` TandemClient with `client.doc()` handles and
 * `handle.presence()`. Nothing else in load/ touches client/; when the SDK's API moves, this
 * is the file to change.
 *
 * One measurement need is not in the SDK's public API: per-op acknowledgement with its
 * version (`DocHandle.submit` returns nothing; `whenSynced()` only says "everything so far").
 * The adapter reads it off the wire instead: it listens to the acks on the client's ShareDB
 * connection (an SDK internal, read-only) and pairs them with submits per document, in
 * order. Ops still go through `DocHandle.submit`, presence through `PresenceHandle`.
 */
import type { JSONOp } from 'ot-json1';
import type { Connection } from 'sharedb/lib/client/index.js';
import { classifySubmitError } from '../client/doc-sync.js';
import { connect, type DocHandle, type PresenceHandle, type TandemClient } from '../client/index.js';
import type { Json1Presence } from '../ot-types/index.js';
import { errorCode, type ConnectFn, type LoadConnection, type LoadDocHandle } from './adapter-types.js';

export const TANDEM_CLIENT_NAME = 'Tandem client SDK (client/index.ts connect → DocHandle, PresenceHandle) over socket.io';

type Waiter = { resolve: (version: number) => void; reject: (err: unknown) => void };
/** The submits that became one queued ShareDB op (several when composed). */
type Batch = Waiter[];

/** An op reply as it travels: `{a:'op', c, d, v, src, seq}`, or with `error` when refused. */
interface OpReply {
  a?: unknown;
  c?: unknown;
  d?: unknown;
  v?: unknown;
  src?: unknown;
  error?: { code?: unknown; message?: unknown };
}

class SdkDocHandle implements LoadDocHandle {
  private handle: DocHandle<unknown> | null = null;
  private presence: PresenceHandle | null = null;
  /** Submits awaiting their ack, grouped as ShareDB queued them; oldest (in flight) first. */
  private readonly batches: Batch[] = [];
  private readonly remoteListeners: Array<(version: number) => void> = [];
  private readonly presenceListeners: Array<(value: unknown) => void> = [];

  constructor(
    private readonly client: TandemClient,
    private readonly collection: string,
    private readonly id: string,
    private readonly reportError: (code: string) => void,
  ) {}

  get data(): unknown {
    return this.handle?.data;
  }

  get version(): number | null {
    return this.handle?.version ?? null;
  }

  get hasPending(): boolean {
    return (this.handle?.pendingCount ?? 0) > 0;
  }

  async open(createWith?: unknown): Promise<void> {
    const handle = this.client.doc<unknown>(this.collection, this.id, { create: createWith });
    this.handle = handle;
    // Refused ops are counted where their submit fails (answered()).
    handle.on('error', (err) => this.reportError(err.code));
    handle.on('op', (_op, meta) => {
      // ShareDB has bumped the version before the op is applied and announced.
      if (meta.source === 'remote') for (const l of this.remoteListeners) l(handle.version ?? -1);
    });
    await handle.ready;
  }

  submit(op: JSONOp): Promise<number> {
    return new Promise((resolve, reject) => {
      const handle = this.handle!;
      const before = handle.pendingCount;
      try {
        handle.submit(op);
      } catch (err) {
        return reject(err);
      }
      // The queue grew: a new op. It did not: ShareDB composed ours into the last queued op.
      const last = this.batches[this.batches.length - 1];
      if (handle.pendingCount > before || !last) this.batches.push([{ resolve, reject }]);
      else last.push({ resolve, reject });
    });
  }

  /** A reply to our oldest op in flight (called from the connection's wire listener). */
  answered(reply: OpReply): void {
    if (reply.error) {
      const code = String(reply.error.code);
      // The SDK keeps and resends ops refused for transient reasons: still waiting.
      if (classifySubmitError(code) !== 'rejected') return this.reportError(code);
      const error = Object.assign(new Error(String(reply.error.message)), { code });
      for (const w of this.batches.shift() ?? []) w.reject(error);
      return;
    }
    const version = typeof reply.v === 'number' ? reply.v + 1 : -1;
    for (const w of this.batches.shift() ?? []) w.resolve(version);
  }

  onRemoteOp(listener: (version: number) => void): void {
    this.remoteListeners.push(listener);
  }

  async subscribePresence(): Promise<void> {
    this.presenceHandle();
  }

  async submitPresence(value: unknown): Promise<void> {
    this.presenceHandle().submit(value as Json1Presence);
  }

  onPresence(listener: (value: unknown) => void): void {
    this.presenceListeners.push(listener);
    this.presenceHandle();
  }

  async whenNothingPending(): Promise<void> {
    try {
      await this.handle?.whenSynced();
    } catch {
      // Stalled or closed: still pending, which the convergence check reports.
    }
  }

  private presenceHandle(): PresenceHandle {
    if (!this.presence) {
      const presence = this.handle!.presence();
      presence.on('change', (_id, value) => {
        if (value !== null) for (const l of this.presenceListeners) l(value);
      });
      presence.on('error', (err) => this.reportError(err.code));
      this.presence = presence;
    }
    return this.presence;
  }
}

/** The SDK's ShareDB connection (private field `socket.connection`), read-only, for acks. */
function wireOf(client: TandemClient): Connection {
  const connection = (client as unknown as { socket?: { connection?: Connection } }).socket?.connection;
  if (!connection) throw new Error('load/adapter.ts: the client SDK no longer exposes socket.connection; update wireOf()');
  return connection;
}

class SdkConnection implements LoadConnection {
  private readonly client: TandemClient;
  private readonly docs = new Map<string, SdkDocHandle>();
  private readonly errorListeners: Array<(code: string) => void> = [];
  private readonly reconnectListeners: Array<() => void> = [];
  private everOnline = false;

  constructor(url: string, getToken: (() => Promise<string>) | undefined) {
    this.client = connect({ url, getToken, reconnect: { initialDelayMs: 100, maxDelayMs: 2_000 } });
    this.client.on('error', (err) => this.emitError(err.code));
    this.client.on('state', (state) => {
      if (state !== 'online') return;
      if (this.everOnline) for (const l of this.reconnectListeners) l();
      this.everOnline = true;
    });
    const wire = wireOf(this.client);
    // The SDK adds a short-lived 'state' listener per closing handle; many close at once in
    // the convergence check.
    wire.setMaxListeners(0);
    wire.on('receive', (request: { data?: OpReply }) => {
      const m = request.data;
      if (m?.a !== 'op' || m.src !== this.client.id) return;
      this.docs.get(`${String(m.c)}\u0000${String(m.d)}`)?.answered(m);
    });
  }

  get online(): boolean {
    return this.client.state === 'online';
  }

  doc(collection: string, id: string): LoadDocHandle {
    const handle = new SdkDocHandle(this.client, collection, id, (code) => this.emitError(code));
    this.docs.set(`${collection}\u0000${id}`, handle);
    return handle;
  }

  whenConnected(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(Object.assign(new Error(`not connected within ${timeoutMs} ms`), { code: 'LOAD_CONNECT_TIMEOUT' })),
        timeoutMs,
      );
    });
    return Promise.race([this.client.whenOnline(), timeout]).finally(() => clearTimeout(timer));
  }

  goOffline(): void {
    this.client.goOffline();
  }

  goOnline(): void {
    this.client.goOnline();
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  onError(listener: (code: string) => void): void {
    this.errorListeners.push(listener);
  }

  async fetchSnapshot(collection: string, id: string): Promise<{ v: number; data: unknown }> {
    const handle = this.client.doc(collection, id);
    try {
      await handle.ready;
      return { v: handle.version ?? -1, data: structuredClone(handle.data) };
    } finally {
      await handle.close();
    }
  }

  close(): void {
    void this.client.close().catch((err: unknown) => this.emitError(errorCode(err)));
  }

  private emitError(code: string): void {
    for (const l of this.errorListeners) l(code);
  }
}

export const connectTandem: ConnectFn = async ({ url, getToken }) => new SdkConnection(url, getToken);
