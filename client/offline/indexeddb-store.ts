import { TandemError, TandemErrorCode } from '../protocol.js';
import { isOutboxRecord, keyString, type DocKey, type OutboxRecord, type OutboxStore } from './outbox-store.js';

export interface IndexedDbOutboxOptions {
  /** IndexedDB database name. Default 'tandem-outbox'; use one per signed-in user. */
  databaseName?: string;
  /** The IndexedDB factory. Default: the global `indexedDB`. */
  indexedDB?: IDBFactory;
}

const STORE = 'docs';
const VERSION = 1;

/** Row layout: the record plus its key string (collection names may contain any character). */
interface Row extends OutboxRecord {
  key: string;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function failed(what: string, err: unknown): TandemError {
  const detail = err instanceof Error ? err.message : String(err);
  return new TandemError(TandemErrorCode.OUTBOX_FAILED, `IndexedDB outbox ${what} failed: ${detail}`);
}

/**
 * The browser outbox: one IndexedDB object store keyed by document. Writes use
 * `durability: 'strict'` because the SDK sends an op only after its save resolved; the
 * browser default ('relaxed' in Chromium) may lose the last writes on a crash.
 */
export class IndexedDbOutboxStore implements OutboxStore {
  readonly name: string;
  private readonly db: Promise<IDBDatabase>;

  constructor(options: IndexedDbOutboxOptions = {}) {
    this.name = options.databaseName ?? 'tandem-outbox';
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (!factory) throw new TandemError(TandemErrorCode.OUTBOX_FAILED, 'IndexedDB is not available here');
    this.db = new Promise<IDBDatabase>((resolve, reject) => {
      const open = factory.open(this.name, VERSION);
      open.onupgradeneeded = () => {
        if (!open.result.objectStoreNames.contains(STORE)) open.result.createObjectStore(STORE, { keyPath: 'key' });
      };
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(failed('open', open.error));
      // Another tab holds an older version open; it will close on its versionchange.
      open.onblocked = () => undefined;
    });
    // Surface open errors on first use, not as an unhandled rejection at construction.
    this.db.catch(() => undefined);
  }

  async load(key: DocKey): Promise<OutboxRecord | null> {
    const db = await this.db;
    try {
      const row: unknown = await request(db.transaction(STORE, 'readonly').objectStore(STORE).get(keyString(key)));
      if (row === undefined) return null;
      if (!isOutboxRecord(row)) throw new Error('stored record has an unexpected shape');
      const { key: _key, ...record } = row as Row;
      return record;
    } catch (err) {
      throw failed('load', err);
    }
  }

  async save(record: OutboxRecord): Promise<void> {
    const db = await this.db;
    const row: Row = { ...record, key: keyString(record) };
    await this.write(db, 'save', (store) => store.put(row));
  }

  async remove(key: DocKey): Promise<void> {
    const db = await this.db;
    await this.write(db, 'remove', (store) => store.delete(keyString(key)));
  }

  async keys(): Promise<DocKey[]> {
    const db = await this.db;
    try {
      const rows = (await request(db.transaction(STORE, 'readonly').objectStore(STORE).getAll())) as unknown[];
      return rows.filter(isOutboxRecord).map(({ collection, id }) => ({ collection, id }));
    } catch (err) {
      throw failed('keys', err);
    }
  }

  async close(): Promise<void> {
    (await this.db).close();
  }

  /** Resolves when the transaction commits (not when the request succeeds): that is durability. */
  private write(db: IDBDatabase, what: string, fn: (store: IDBObjectStore) => IDBRequest): Promise<void> {
    return new Promise((resolve, reject) => {
      let tx: IDBTransaction;
      try {
        tx = db.transaction(STORE, 'readwrite', { durability: 'strict' });
        fn(tx.objectStore(STORE));
      } catch (err) {
        reject(failed(what, err));
        return;
      }
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(failed(what, tx.error));
      tx.onabort = () => reject(failed(what, tx.error ?? 'transaction aborted'));
    });
  }
}
