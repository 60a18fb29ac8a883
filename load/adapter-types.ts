/**
 * What the load tool needs from a client library, and nothing more. Two implementations:
 * load/adapter.ts (Tandem's client over socket.io — the one file to change when the client
 * SDK changes) and load/stock-adapter.ts (a stock ShareDB client over a plain WebSocket).
 */
import type { JSONOp } from 'ot-json1';

export interface LoadDocHandle {
  /** The local copy of the document (undefined until fetched or subscribed). */
  readonly data: unknown;
  /** The local version (null until fetched or subscribed). */
  readonly version: number | null;
  /** True while some of this client's ops await acknowledgement. */
  readonly hasPending: boolean;
  /**
   * Subscribes, and creates the document with `createWith` when given and the server has no
   * such document (someone else creating it first is fine). Ops submitted while another is
   * in flight are composed into one commit, as ShareDB's client (and Tandem's SDK) does by
   * default — with one op per commit, a backlog makes the client transform every incoming
   * op against every queued one, and an overloaded run collapses instead of slowing down.
   */
  open(createWith?: unknown): Promise<void>;
  /**
   * Submits an op (applied locally at once). Resolves when the server acknowledges it (or
   * the commit it was composed into), with the document version right after that commit —
   * the same number receivers see in `onRemoteOp`, which is how a worker pairs one op's
   * submit and its arrival elsewhere. Rejects with an error carrying a string `code`.
   */
  submit(op: JSONOp): Promise<number>;
  /** Calls `listener(versionAfterOp)` for every op from another client, once applied. */
  onRemoteOp(listener: (version: number) => void): void;
  /** Subscribes to this document's presence channel (needed to receive presence). */
  subscribePresence(): Promise<void>;
  submitPresence(value: unknown): Promise<void>;
  onPresence(listener: (value: unknown) => void): void;
  /** Resolves once nothing is pending (every submitted op acknowledged). */
  whenNothingPending(): Promise<void>;
}

export interface LoadConnection {
  doc(collection: string, id: string): LoadDocHandle;
  /** Resolves on the first successful connection (handshake done). */
  whenConnected(timeoutMs: number): Promise<void>;
  /** True while connected and able to send. */
  readonly online: boolean;
  /** Drops the connection and stays offline (pending ops stay queued) until goOnline(). */
  goOffline(): void;
  goOnline(): void;
  /** Called on every successful connection after the first. */
  onReconnect(listener: () => void): void;
  /** Called with an error code for errors not tied to a submit (connection, doc, presence). */
  onError(listener: (code: string) => void): void;
  /** Reads a document's current version and data from the server (no subscription). */
  fetchSnapshot(collection: string, id: string): Promise<{ v: number; data: unknown }>;
  close(): void;
}

export interface ConnectRequest {
  url: string;
  /** For a server with authentication: a fresh token for this client's user, per call. */
  getToken?: () => Promise<string>;
}

/** Resolves once the client exists (a token may have to be fetched before its socket opens). */
export type ConnectFn = (request: ConnectRequest) => Promise<LoadConnection>;

/** A string code for any error a client library reports. */
export function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') return String(code);
  }
  if (err instanceof Error && err.message) return `ERROR: ${err.message.slice(0, 60)}`;
  return 'UNKNOWN';
}
