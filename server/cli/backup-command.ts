/**
 * `tandem backup <file>`: a consistent copy of a live SQLite store, taken while servers keep
 * committing. SQLite's `VACUUM INTO` reads the database inside one read transaction: in WAL
 * mode writers are not blocked by it, and the copy is the database as of one commit — every
 * document's snapshot together with exactly the ops before it, never half of a commit.
 *
 * The copy is written next to the target under a temporary name, checked (`quick_check`),
 * flushed to disk and only then renamed into place, so `<file>` either does not exist or is a
 * complete backup. Restoring is starting a server on a copy of it (README: Backup).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import Database from 'libsql';
import { TandemErrorCode } from '../../client/protocol.js';
import { ConfigError, loadConfig } from '../config.js';
import { openSqliteFile } from '../storage/sqlite-connection.js';
import { sqlitePathFromUrl } from '../storage/index.js';

export interface BackupResult {
  file: string;
  bytes: number;
  documents: number;
  ops: number;
  ms: number;
}

/** The SQLite file a `DB_URL` names, or a ConfigError saying why it cannot be backed up here. */
export function sqliteFileOf(dbUrl: string): string {
  if (!dbUrl.toLowerCase().startsWith('sqlite:')) {
    throw new ConfigError(
      `DB_URL is ${dbUrl.split(':')[0]}:…; tandem backup copies SQLite stores (use pg_dump for PostgreSQL, mongodump for MongoDB)`,
      'DB_URL',
    );
  }
  const file = sqlitePathFromUrl(dbUrl);
  if (file === ':memory:') throw new ConfigError('DB_URL is an in-memory SQLite database: nothing to back up', 'DB_URL');
  if (!fs.existsSync(file)) throw new ConfigError(`DB_URL names ${file}, which does not exist`, 'DB_URL');
  return file;
}

function count(conn: Database.Database, sql: string): number {
  return Number((conn.prepare(sql).get() as { n: number | bigint }).n);
}

/** Copies the live store at `source` to `target` (which must not exist yet). */
export function backupSqlite(source: string, target: string): BackupResult {
  const started = performance.now();
  const file = path.resolve(target);
  if (fs.existsSync(file)) throw new ConfigError(`${target} exists; tandem backup never overwrites a file`);
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) throw new ConfigError(`${dir} does not exist`);
  const temporary = path.join(dir, `.${path.basename(file)}.${process.pid}.partial`);
  const conn = openSqliteFile({ path: source });
  try {
    // The path is a bound parameter: any file name is safe.
    conn.prepare('VACUUM INTO ?').run(temporary);
  } catch (err) {
    fs.rmSync(temporary, { force: true });
    throw Object.assign(new Error(`backup of ${source} failed: ${(err as Error).message}`), { code: TandemErrorCode.STORAGE_ERROR });
  } finally {
    conn.close();
  }
  let documents: number;
  let ops: number;
  const copy = new Database(temporary);
  try {
    const check = copy.prepare('PRAGMA quick_check').get() as Record<string, string>;
    if (Object.values(check)[0] !== 'ok') throw new Error(`the copy fails SQLite's quick_check: ${JSON.stringify(check)}`);
    documents = count(copy, 'SELECT count(*) AS n FROM snapshots WHERE type IS NOT NULL');
    ops = count(copy, 'SELECT count(*) AS n FROM ops');
  } catch (err) {
    copy.close();
    fs.rmSync(temporary, { force: true });
    throw Object.assign(err as Error, { code: TandemErrorCode.STORAGE_ERROR });
  }
  copy.close();
  // Durable before it is named: a crash leaves a .partial file, never a short backup.
  const fd = fs.openSync(temporary, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(temporary, file);
  return { file, bytes: fs.statSync(file).size, documents, ops, ms: Math.round(performance.now() - started) };
}

/** The `backup` subcommand: prints one JSON line with what was copied, exits 1 with a code when it cannot. */
export function backupCommand(): Command {
  return new Command('backup')
    .description('copy a live SQLite store to <file> without stopping writes (restore: README "Backup")')
    .argument('<file>', 'where the copy goes; must not exist')
    .addOption(new Option('--db-url <url>', 'the store to copy (default sqlite:./data/tandem.db)').env('DB_URL'))
    .action((target: string, flags: { dbUrl?: string }) => {
      try {
        const dbUrl = flags.dbUrl ?? loadConfig({}).dbUrl;
        console.log(JSON.stringify(backupSqlite(sqliteFileOf(dbUrl), target)));
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        console.error(`tandem: ${typeof code === 'string' ? code : TandemErrorCode.STORAGE_ERROR}: ${(err as Error).message}`);
        process.exit(1);
      }
    });
}
