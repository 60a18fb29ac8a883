/**
 * Tandem's client SDK for Node: everything from the browser entry plus the SQLite-file
 * outbox. Browser bundles must import `client/index.ts` instead (this file pulls in
 * `node:fs` and the native libsql driver).
 */
export * from './index.js';
export { SqliteOutboxStore, type SqliteOutboxOptions } from './offline/sqlite-store.js';
