/**
 * PostgreSQL for `npm run bench -- --store postgres`: the server in PG_BENCH_URL (default the
 * machine's postgres://postgres@127.0.0.1:5432/test), a fresh schema for every server the
 * bench starts (Tandem's adapter creates the tables in it on start-up, for either side), and
 * that schema dropped when the server is closed. Schemas are named
 * `tandem_bench_<pid>_<time>_<n>`: an interrupted run leaves them behind under that prefix.
 */
import pg from 'pg';
import { redactUrl } from '../../server/storage/postgres-connection.js';

export const PG_BENCH_URL = process.env.PG_BENCH_URL || 'postgres://postgres@127.0.0.1:5432/test';

let counter = 0;

export interface BenchSchema {
  /** The DB_URL a server is given: the base URL with `?schema=`. */
  readonly url: string;
  readonly schema: string;
}

/** A schema name no other server of this (or a concurrent) run uses, and its DB_URL. */
export function freshSchema(base = PG_BENCH_URL): BenchSchema {
  const schema = `tandem_bench_${process.pid}_${Date.now().toString(36)}_${++counter}`;
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  return { url: url.href, schema };
}

async function withClient<T>(base: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: base, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Throws, naming the (password-redacted) URL, when PostgreSQL does not answer. */
export async function checkBenchPostgres(base = PG_BENCH_URL): Promise<void> {
  try {
    await withClient(base, (client) => client.query('SELECT 1'));
  } catch (err) {
    throw new Error(
      `--store postgres: PostgreSQL at ${redactUrl(base)} does not answer (${(err as Error).message || (err as { code?: string }).code}); set PG_BENCH_URL`,
    );
  }
}

/** Drops the schema and everything in it (after its server closed its pool). */
export async function dropSchema({ schema }: BenchSchema, base = PG_BENCH_URL): Promise<void> {
  await withClient(base, (client) => client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`));
}
