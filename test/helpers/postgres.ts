/**
 * PostgreSQL for tests: the server to use (PG_TEST_URL, default the machine's
 * postgres://postgres@127.0.0.1:5432/test), whether it answers, and fresh schemas that are
 * dropped at the end. A test that needs PostgreSQL fails under CI=true when it does not
 * answer and is skipped loudly otherwise (requireService).
 */
import pg from 'pg';
import { PostgresStore, redactUrl, type PostgresOptions } from '../../server/storage/postgres-connection.js';

export const PG_TEST_URL = process.env.PG_TEST_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** Why PostgreSQL cannot be used, or null when it answers. */
export async function postgresUnavailable(url = PG_TEST_URL): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return `PostgreSQL at ${redactUrl(url)} does not answer (${(err as Error).message || (err as { code?: string }).code}); set PG_TEST_URL`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

let counter = 0;

/** Fresh schemas (each with its own PostgresStore), all dropped and ended by `dropAll`. */
export class TestSchemas {
  private readonly schemas: string[] = [];
  private readonly stores: PostgresStore[] = [];

  constructor(private readonly url = PG_TEST_URL) {}

  /** A schema name no other test (or concurrent run) uses. */
  name(): string {
    const schema = `tandem_test_${process.pid}_${Date.now().toString(36)}_${++counter}`;
    this.schemas.push(schema);
    return schema;
  }

  /** A store on a fresh schema, migrated. */
  async store(opts: Partial<PostgresOptions> = {}): Promise<PostgresStore> {
    const store = new PostgresStore({ url: this.url, schema: this.name(), poolMax: 4, ...opts });
    this.stores.push(store);
    await store.ready();
    return store;
  }

  /** Ends every store's pool (those the suites did not close) and drops every schema. */
  async dropAll(): Promise<void> {
    await Promise.all(this.stores.splice(0).map((store) => store.end().catch(() => undefined)));
    const schemas = this.schemas.splice(0);
    if (schemas.length === 0) return;
    const admin = new pg.Client({ connectionString: this.url });
    await admin.connect();
    try {
      // In batches: one DROP of hundreds of schemas would need a lock per table and index.
      for (let i = 0; i < schemas.length; i += 20) {
        const batch = schemas.slice(i, i + 20).map((s) => pg.escapeIdentifier(s));
        await admin.query(`DROP SCHEMA IF EXISTS ${batch.join(', ')} CASCADE`);
      }
    } finally {
      await admin.end();
    }
  }
}
