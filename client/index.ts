/**
 * Tandem's client SDK (`@tandem/client`) — the browser-safe entry. Node clients import
 * `@tandem/client/node`, which adds the SQLite outbox.
 *
 *   const client = connect({ url, outbox: new IndexedDbOutboxStore() });
 *   const doc = client.doc<Note>('notes', 'n1', { create: { title: '' } });
 *   await doc.ready;
 *   doc.submit(ops.textInsert(['title'], 0, 'Hi'));
 */
export { connect, TandemClient, type ClientOptions, type ConnectionState, type ClientEvents } from './tandem-client.js';
export {
  DocHandle,
  type DocOptions,
  type DocEvents,
  type OpMeta,
  type OpRejection,
  type DeepReadonly,
  type SubmitOptions,
  type UndoOptions,
  type UndoState,
} from './doc-handle.js';
export { PresenceHandle, type PresenceEvents } from './presence-handle.js';
export { IndexedDbOutboxStore, type IndexedDbOutboxOptions } from './offline/indexeddb-store.js';
export {
  MemoryOutboxStore,
  type OutboxStore,
  type OutboxRecord,
  type OutboxOp,
  type DocKey,
} from './offline/outbox-store.js';
export type { LockManagerLike } from './offline/doc-lock.js';
export { connectSocket, type ConnectOptions, type SocketConnection } from './connect.js';
export type { ReconnectPolicy } from './socket-shim.js';
export {
  TandemError,
  TandemErrorCode,
  ShareDbErrorCode,
  PROTOCOL_VERSION,
  type ErrorCode,
  type WireError,
} from './protocol.js';
export { ops, type Json1Presence, type JSONOp, type JsonValue, type Path } from '../ot-types/index.js';
