/**
 * The Node outbox: an SQLite file (libsql, better-sqlite3 API). Node-only — exported from
 * `client/node.ts`, never from the browser entry.
 */
import { mkdirSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import Database from 'libsql';
import { TandemError, TandemErrorCode } from '../protocol.js';
import { isOutboxRecord, keyString, type DocKey, type OutboxRecord, type OutboxStore } from './outbox-store.js';

export interface SqliteOutboxOptions {
  /** The database file; its folder is created if missing. */
  path: string;
  /**
   * SQLite `synchronous` pragma. Default NORMAL: in WAL mode a process crash (SIGKILL)
   * loses nothing; only a power loss may lose the last saves. FULL survives power loss at
   * an fsync (~5 ms here) per save — and every local edit is a save before it is sent.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** Lock-name prefix; default the file's base name. */
  name?: string;
}

type Statement = Database.Statement;

function failed(what: string, err: unknown): TandemError {
  const detail = err instanceof Error ? err.message : String(err);
  return new TandemError(TandemErrorCode.OUTBOX_FAILED, `SQLite outbox ${what} failed: ${detail}`);
}

/**
 * One row per document holding the record as JSON. libsql is synchronous, so each save is
 * durable when `save()` resolves. One process per file: there is no cross-process lock.
 */
export class SqliteOutboxStore implements OutboxStore {
  readonly name: string;
  private readonly db: Database.Database;
  private readonly stmts: { get: Statement; put: Statement; del: Statement; keys: Statement };

  constructor(options: SqliteOutboxOptions) {
    const path = resolve(options.path);
    mkdirSync(dirname(path), { recursive: true });
    this.name = options.name ?? basename(path);
    try {
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
      // The key is JSON.stringify([collection, id]): SQLite TEXT stops at a NUL character,
      // which collection names and ids may contain; JSON escapes it.
      this.db.exec(`CREATE TABLE IF NOT EXISTS outbox (
        key TEXT PRIMARY KEY,
        record TEXT NOT NULL
      )`);
      this.stmts = {
        get: this.db.prepare('SELECT record FROM outbox WHERE key = ?'),
        put: this.db.prepare('INSERT OR REPLACE INTO outbox (key, record) VALUES (?, ?)'),
        del: this.db.prepare('DELETE FROM outbox WHERE key = ?'),
        keys: this.db.prepare('SELECT key FROM outbox ORDER BY key'),
      };
    } catch (err) {
      throw failed('open', err);
    }
  }

  load(key: DocKey): Promise<OutboxRecord | null> {
    return this.run('load', () => {
      const row = this.stmts.get.get(keyString(key)) as { record: string } | undefined;
      if (!row) return null;
      const record: unknown = JSON.parse(row.record);
      if (!isOutboxRecord(record)) throw new Error('stored record has an unexpected shape');
      return record;
    });
  }

  save(record: OutboxRecord): Promise<void> {
    return this.run('save', () => {
      this.stmts.put.run(keyString(record), JSON.stringify(record));
    });
  }

  remove(key: DocKey): Promise<void> {
    return this.run('remove', () => {
      this.stmts.del.run(keyString(key));
    });
  }

  keys(): Promise<DocKey[]> {
    return this.run('keys', () =>
      (this.stmts.keys.all() as Array<{ key: string }>).map((row) => {
        const [collection, id] = JSON.parse(row.key) as [string, string];
        return { collection, id };
      }),
    );
  }

  close(): Promise<void> {
    return this.run('close', () => {
      if (this.db.open) this.db.close();
    });
  }

  private run<T>(what: string, fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(failed(what, err));
    }
  }
}
