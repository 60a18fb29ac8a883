/**
 * Tandem's client SDK for Node (`@tandem/client/node`): everything from the browser entry
 * plus the SQLite-file outbox. Browser bundles import `@tandem/client` instead (this file
 * pulls in `node:fs` and the native libsql driver).
 */
export * from './index.js';
export { SqliteOutboxStore, type SqliteOutboxOptions } from './offline/sqlite-store.js';
