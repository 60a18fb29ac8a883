/**
 * The one typed boundary to sharedb@7's client internals that the SDK relies on and that
 * @types/sharedb does not declare (pending-op queue, version, private handlers).
 *
 * The SDK needs them for three things ShareDB does not offer publicly: restoring a
 * document's pending ops from the offline outbox, pre-assigning each op's `src`/`seq`
 * before it is sent (write-ahead), and deciding itself what happens to an op the server
 * refuses. Every field below was read from sharedb 7.0.0's lib/client/doc.js and
 * connection.js; re-check them when sharedb moves.
 */
import type { Connection, Doc } from 'sharedb/lib/client/index.js';
import type { JSONOp } from 'ot-json1';

/** An op as ShareDB's Doc queues it (`inflightOp` and entries of `pendingOps`). */
export interface QueuedOp {
  op?: JSONOp;
  create?: { type: string; data: unknown };
  del?: boolean;
  /** Source id and sequence number: together the op's identity for server-side de-dup. */
  src?: string | null;
  seq?: number | null;
  /** Set when the op was (or may have been) sent; ShareDB never composes into such an op. */
  sentAt?: number;
  retries?: number;
  source?: unknown;
  /** The OT type object, pinned by ShareDB on each queued op. */
  type?: unknown;
  callbacks?: Array<((err?: Error | null) => void) | undefined | null>;
}

/** A ShareDB error as the client sees it: wire errors carry a string (or, from Mongo, numeric) code. */
export interface ShareDbClientError extends Error {
  code?: string | number;
}

/** An `op` message from the server: an acknowledgement, or an op committed by someone. */
export interface OpMessage {
  src?: string;
  seq?: number;
  v: number;
  op?: JSONOp;
  create?: { type: string; data: unknown };
  del?: boolean;
}

export interface OtTypeLike {
  name: string;
  uri: string;
}

/** sharedb 7 client Doc fields and methods that @types/sharedb leaves out or mistypes. */
export interface DocInternals {
  version: number | null;
  type: OtTypeLike | null;
  data: unknown;
  inflightOp: QueuedOp | null;
  pendingOps: QueuedOp[];
  paused: boolean;
  preventCompose: boolean;
  subscribed: boolean;
  wantSubscribe: boolean;
  _isInHardRollback: boolean;
  _wantsDestroy: boolean;
  _setType(type: string | null): void;
  _setData(data: unknown): void;
  _handleOp(err: ShareDbClientError | null, message: OpMessage): void;
  /** Drops the in-flight op, calls its callbacks with `err`, sends the next one. */
  _clearInflightOp(err?: Error | null): void;
  /** Drops every queued op and reloads the doc from the server (callbacks get `err`). */
  _hardRollback(err: Error): void;
  /** Emits 'no write pending' / 'nothing pending' when they hold. */
  _emitNothingPending(): void;
  hasWritePending(): boolean;
  flush(): void;
  pause(): void;
  resume(): void;
}

/** sharedb 7 client Connection fields the SDK uses. */
export interface ConnectionInternals {
  /** Sent in the handshake and adopted by the server as this client's `src`. */
  id: string | null;
  /** Next op sequence number for ops of this connection's `src`. */
  seq: number;
  canSend: boolean;
  _destroyDoc(doc: Doc): void;
  /** The doc if this connection has it, without creating it (unlike `get`). */
  getExisting(collection: string, id: string): Doc | undefined;
  /** Processes one message as if received from the server. */
  handleMessage(message: Record<string, unknown>): void;
}

/** ShareDB's client Presence (lib/client/presence/presence.js): the remote presences it tracks. */
export interface PresenceInternals {
  /** Remote presence instances by presence id; each moves its value through local ops and re-emits it. */
  _remotePresenceInstances: Record<string, { value: unknown }>;
  /** The values of those instances, as last emitted. */
  remotePresences: Record<string, unknown>;
  /** Forgets one remote presence without emitting anything. */
  _removeRemotePresence(id: string): void;
  /** Asks everyone on the channel to send their presence again. */
  _requestRemotePresence(): void;
}

export function presenceInternals(presence: object): PresenceInternals {
  // The untyped ShareDB boundary (see file comment).
  return presence as unknown as PresenceInternals;
}

export function docInternals(doc: Doc): DocInternals {
  // The untyped ShareDB boundary: the runtime object has these fields (see file comment).
  return doc as unknown as DocInternals;
}

export function connectionInternals(connection: Connection): ConnectionInternals {
  // The untyped ShareDB boundary (see file comment).
  return connection as unknown as ConnectionInternals;
}

/**
 * Unsubscribes `doc`, waiting for the reply while connected: once the doc is forgotten, a
 * late reply would reach the next handle's doc of the same id. Offline no reply can come
 * (and ShareDB may hold the request behind a queued subscribe), so there is nothing to wait for.
 */
export function unsubscribeWhileOnline(connection: Connection, doc: Doc): Promise<void> {
  if (!connectionInternals(connection).canSend) return Promise.resolve();
  return untilCalledBackOrOffline(connection, (done) => doc.unsubscribe(() => done()));
}

/**
 * Starts `operation` and resolves when it calls back, or as soon as the connection cannot
 * send (at once if it already cannot): ShareDB calls back requests like unsubscribe only
 * once they were answered, which never happens offline.
 */
export function untilCalledBackOrOffline(connection: Connection, operation: (done: () => void) => void): Promise<void> {
  const online = () => connectionInternals(connection).canSend;
  return new Promise<void>((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      connection.off('state', onState);
      resolve();
    };
    const onState = () => {
      if (!online()) finish();
    };
    connection.on('state', onState);
    operation(finish);
    if (!online()) finish();
  });
}
