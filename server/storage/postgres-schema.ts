/**
 * Tandem's tables in PostgreSQL and the versioned migrations that create them.
 *
 * `tandem_schema_version` records every migration applied. Migrations run in one
 * transaction under a transaction-level advisory lock keyed by the schema, so several
 * instances starting at once apply each migration exactly once: the others wait for the
 * lock, then find the version already recorded. DDL is transactional in PostgreSQL, so a
 * failed migration leaves nothing behind.
 *
 * Text keys use the "C" collation: the primary keys then order ids by their bytes, which is
 * the order results without `$sort` come back in (as with SQLite), whatever the database's
 * default collation is.
 */
import { escapeIdentifier, type ClientBase } from 'pg';

/** The qualified names of Tandem's tables (SQL text, safe to splice: quoted identifiers). */
export interface TableNames {
  /** The schema, unquoted, or null for the connection's search_path. */
  readonly schema: string | null;
  readonly snapshots: string;
  readonly ops: string;
  readonly milestones: string;
  /** The highest seq of each source whose ops compaction removed (resends of those are duplicates). */
  readonly prunedSources: string;
  /** Per webhook target, the next version of each document still to deliver. */
  readonly webhookCursors: string;
  readonly schemaVersion: string;
}

/** Schema names accepted from a URL or option: plain identifiers, so no quoting surprises. */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function isValidSchemaName(name: string): boolean {
  return SCHEMA_NAME.test(name);
}

export function tableNames(schema: string | null): TableNames {
  if (schema !== null && !isValidSchemaName(schema)) {
    throw new Error('PostgreSQL schema names must be identifiers: letters, digits and _, at most 63 characters');
  }
  const prefix = schema === null ? '' : `${escapeIdentifier(schema)}.`;
  return {
    schema,
    snapshots: `${prefix}tandem_snapshots`,
    ops: `${prefix}tandem_ops`,
    milestones: `${prefix}tandem_milestones`,
    prunedSources: `${prefix}tandem_pruned_sources`,
    webhookCursors: `${prefix}tandem_webhook_cursors`,
    schemaVersion: `${prefix}tandem_schema_version`,
  };
}

interface Migration {
  readonly version: number;
  readonly statements: (t: TableNames) => string[];
}

/** Append-only: a released migration is never edited, a change is a new version. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    statements: (t) => [
      `CREATE TABLE ${t.snapshots} (
        collection TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        type TEXT,            -- NULL once deleted: the row stays so the version keeps counting
        v INTEGER NOT NULL,
        data JSONB,           -- NULL when deleted
        metadata JSONB,       -- snapshot.m
        PRIMARY KEY (collection, id)
      )`,
      `CREATE TABLE ${t.ops} (
        collection TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        v INTEGER NOT NULL,
        src TEXT,             -- copied out of op for getCommittedOpVersion (resent-op detection)
        seq BIGINT,
        op JSONB NOT NULL,    -- the whole op, metadata included
        PRIMARY KEY (collection, id, v)
      )`,
      // A resent op is looked up by src/seq; without this, every op of the document is read.
      `CREATE INDEX tandem_ops_src_seq ON ${t.ops} (collection, id, src, seq)`,
      `CREATE TABLE ${t.milestones} (
        collection TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        v INTEGER NOT NULL,
        mtime DOUBLE PRECISION, -- snapshot.m.mtime (ms), for the by-timestamp lookups
        type TEXT,
        data JSONB,
        metadata JSONB,
        PRIMARY KEY (collection, id, v)
      )`,
      `CREATE INDEX tandem_milestones_mtime ON ${t.milestones} (collection, id, mtime)`,
    ],
  },
  {
    // OPLOG_RETENTION: what compaction removed stays recognisable when it is sent again.
    version: 2,
    statements: (t) => [
      `CREATE TABLE ${t.prunedSources} (
        collection TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        src TEXT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (collection, id, src)
      )`,
      // WEBHOOK_URLS: compaction never removes ops a target has not received.
      `CREATE TABLE ${t.webhookCursors} (
        target TEXT NOT NULL,
        collection TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        v INTEGER NOT NULL,
        PRIMARY KEY (target, collection, id)
      )`,
      `CREATE INDEX tandem_webhook_cursors_doc ON ${t.webhookCursors} (collection, id, v)`,
    ],
  },
];

/** The schema version this code writes and reads. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Brings the schema to LATEST_SCHEMA_VERSION, on `client` (which must not be in a
 * transaction). Safe to run from several processes at once. Returns the version found.
 */
export async function migrate(client: ClientBase, t: TableNames): Promise<number> {
  await client.query('BEGIN');
  try {
    // One lock per schema (per database: advisory locks are database-wide); released at COMMIT.
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`tandem.migrate:${t.schema ?? ''}`]);
    if (t.schema !== null) {
      // Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when it exists.
      const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [t.schema]);
      if (found.rowCount === 0) await client.query(`CREATE SCHEMA ${escapeIdentifier(t.schema)}`);
    }
    await client.query(`CREATE TABLE IF NOT EXISTS ${t.schemaVersion} (
      version INTEGER PRIMARY KEY,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`);
    const result = await client.query<{ version: number }>(`SELECT coalesce(max(version), 0) AS version FROM ${t.schemaVersion}`);
    const found = result.rows[0]!.version;
    if (found > LATEST_SCHEMA_VERSION) {
      throw new Error(
        `the PostgreSQL schema is at version ${found}, newer than this server knows (${LATEST_SCHEMA_VERSION}): upgrade the server`,
      );
    }
    for (const migration of MIGRATIONS) {
      if (migration.version <= found) continue;
      for (const statement of migration.statements(t)) await client.query(statement);
      await client.query(`INSERT INTO ${t.schemaVersion} (version) VALUES ($1)`, [migration.version]);
    }
    await client.query('COMMIT');
    return found;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
