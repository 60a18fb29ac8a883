/**
 * LoadConnection/LoadDocHandle over a ShareDB client `Connection`, shared by both adapters
 * (Tandem's socket.io client and the stock WebSocket client expose the same ShareDB client).
 */
import type { JSONOp } from 'ot-json1';
import type { Connection, Doc, LocalPresence, Presence } from 'sharedb/lib/client/index.js';
import { ShareDbErrorCode } from '../client/protocol.js';
import { errorCode, type LoadConnection, type LoadDocHandle } from './adapter-types.js';

/** What a transport adds to a ShareDB Connection: going on/offline and closing. */
export interface TransportControl {
  goOffline(): void;
  goOnline(): void;
  close(): void;
}

class ShareDbDocHandle implements LoadDocHandle {
  private presence: Presence | null = null;
  private local: LocalPresence | null = null;

  constructor(
    private readonly doc: Doc,
    private readonly reportError: (code: string) => void,
  ) {
    // An EventEmitter 'error' without a listener would throw and kill the worker.
    doc.on('error', (err) => reportError(errorCode(err)));
    // ShareDB's doc presence waits for 'nothing pending' once per presence update; under
    // load many wait at once, which is expected, not a leak.
    doc.setMaxListeners(0);
  }

  get data(): unknown {
    return this.doc.data;
  }

  get version(): number | null {
    return this.doc.version;
  }

  get hasPending(): boolean {
    return this.doc.hasWritePending();
  }

  async open(createWith?: unknown): Promise<void> {
    await new Promise<void>((resolve, reject) => this.doc.subscribe((err) => (err ? reject(err) : resolve())));
    if (createWith !== undefined) await this.createIfMissing(createWith);
  }

  private createIfMissing(initial: unknown): Promise<void> {
    if (this.doc.type !== null) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.doc.create(initial, 'json1', (err) => {
        // Another client (or an earlier run with the same ids) created it first: fine.
        if (err && errorCode(err) !== ShareDbErrorCode.ALREADY_CREATED) reject(err);
        else resolve();
      }),
    );
  }

  submit(op: JSONOp): Promise<number> {
    return new Promise((resolve, reject) => {
      try {
        this.doc.submitOp(op, {}, (err) => {
          // Read the version synchronously: the next message may change it before a
          // promise continuation runs.
          if (err) reject(err);
          else resolve(this.doc.version ?? -1);
        });
      } catch (err) {
        reject(err);
      }
    });
  }

  onRemoteOp(listener: (version: number) => void): void {
    // ShareDB bumps the version before it applies a remote op and emits 'op', so version is
    // the one after the op — as in submit().
    this.doc.on('op', (_op, source) => {
      if (source === false) listener(this.doc.version ?? -1);
    });
  }

  subscribePresence(): Promise<void> {
    const presence = this.presenceChannel();
    return new Promise((resolve, reject) => presence.subscribe((err) => (err ? reject(err) : resolve())));
  }

  submitPresence(value: unknown): Promise<void> {
    this.local ??= this.presenceChannel().create();
    const local = this.local;
    return new Promise((resolve, reject) => local.submit(value, (err) => (err ? reject(err) : resolve())));
  }

  onPresence(listener: (value: unknown) => void): void {
    this.presenceChannel().on('receive', (_id, value) => {
      if (value !== null) listener(value);
    });
  }

  whenNothingPending(): Promise<void> {
    return new Promise((resolve) => this.doc.whenNothingPending(() => resolve()));
  }

  private presenceChannel(): Presence {
    if (!this.presence) {
      this.presence = this.doc.connection.getDocPresence(this.doc.collection, this.doc.id);
      this.presence.on('error', (err) => this.reportError(errorCode(err)));
    }
    return this.presence;
  }
}

/** Wraps a ShareDB client Connection and its transport as a LoadConnection. */
export class ShareDbLoadConnection implements LoadConnection {
  private readonly errorListeners: Array<(code: string) => void> = [];
  private readonly reconnectListeners: Array<() => void> = [];
  private everConnected = false;

  constructor(
    private readonly connection: Connection,
    private readonly transport: TransportControl,
  ) {
    connection.on('state', (state) => {
      if (state !== 'connected') return;
      if (this.everConnected) for (const l of this.reconnectListeners) l();
      this.everConnected = true;
    });
    connection.on('error', (err) => this.emitError(errorCode(err)));
  }

  get online(): boolean {
    return this.connection.state === 'connected';
  }

  doc(collection: string, id: string): LoadDocHandle {
    return new ShareDbDocHandle(this.connection.get(collection, id), (code) => this.emitError(code));
  }

  whenConnected(timeoutMs: number): Promise<void> {
    if (this.connection.state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.connection.off('state', onState);
        reject(Object.assign(new Error(`not connected within ${timeoutMs} ms`), { code: 'LOAD_CONNECT_TIMEOUT' }));
      }, timeoutMs);
      const onState = (state: string) => {
        if (state !== 'connected') return;
        clearTimeout(timer);
        this.connection.off('state', onState);
        resolve();
      };
      this.connection.on('state', onState);
    });
  }

  goOffline(): void {
    this.transport.goOffline();
  }

  goOnline(): void {
    this.transport.goOnline();
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  onError(listener: (code: string) => void): void {
    this.errorListeners.push(listener);
  }

  fetchSnapshot(collection: string, id: string): Promise<{ v: number; data: unknown }> {
    const doc = this.connection.get(collection, id);
    return new Promise((resolve, reject) =>
      doc.fetch((err) => {
        if (err) return reject(err);
        resolve({ v: doc.version ?? -1, data: structuredClone(doc.data) });
        doc.destroy();
      }),
    );
  }

  close(): void {
    this.transport.close();
  }

  private emitError(code: string): void {
    for (const l of this.errorListeners) l(code);
  }
}
