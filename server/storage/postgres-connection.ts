/**
 * PostgresStore: the connection pool of the PostgreSQL adapters (postgres.ts,
 * postgres-milestone.ts), their schema migration, statement timeouts and readiness check.
 *
 * The schema is migrated on first use (the server's readiness check right after start-up
 * is the first use), not in the constructor: opening storage stays synchronous, and a
 * PostgreSQL that is down at start-up makes the instance unready instead of failing it; the
 * migration is retried on the next use until it succeeds.
 *
 * Tables are named with their schema (`?schema=` in the URL) rather than through
 * `search_path`, so pooled connections need no per-connection setup and a connection pooler
 * in transaction mode changes nothing.
 */
import { Client, DatabaseError, Pool, type PoolClient, type QueryConfig, type QueryResult, type QueryResultRow } from 'pg';
import { TandemError, TandemErrorCode } from '../../client/protocol.js';
import { loadConfig } from '../config.js';
import { migrate, tableNames, type TableNames } from './postgres-schema.js';
import { asStorageFailure } from './storage-errors.js';

export interface PostgresOptions {
  /** `postgres://` or `postgresql://` URL; `?schema=name` puts Tandem's tables in that schema (created if missing). */
  url: string;
  /** Schema for Tandem's tables; wins over the URL's `?schema=`. Unset: the connection's search_path. */
  schema?: string;
  /** Most connections the pool opens (PG_POOL_MAX). Default: the configuration's default, 10. */
  poolMax?: number;
  /** Longest wait for a connection, new or a free pooled one, ms. Default 5000; 0 waits for ever. */
  connectTimeoutMs?: number;
  /** Longest wait for PostgreSQL's answer to a statement before its connection is given up, ms. Default 10000; 0 waits for ever. */
  readTimeoutMs?: number;
  /** How long a client's query may run before PostgreSQL cancels it, ms. Default QUERY_TIMEOUT_MS (5000); 0 never cancels. */
  queryTimeoutMs?: number;
}

/** How long ping() may take, whatever PostgreSQL does (the readiness check's budget). */
export const PING_TIMEOUT_MS = 2000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/**
 * A statement whose answer never comes (PostgreSQL hung, or its connection dead without a
 * reset: a failover, a lost NAT entry) would otherwise hold its caller for good — a commit
 * holds its document's submit queue, so the document would stop taking ops on this instance
 * while /readyz, on fresh connections, says ready. After this long the statement fails
 * (TANDEM_STORAGE_ERROR, which the SDK resends: ShareDB's src/seq check keeps a resend of
 * an op that did commit from committing twice) and its connection is dropped. Above the
 * client queries' own limit (QUERY_TIMEOUT_MS, 5 s, cancelled by PostgreSQL).
 */
export const DEFAULT_READ_TIMEOUT_MS = loadConfig({}).pgReadTimeoutMs;
/** Connections the pool opens after the migration and keeps open while idle. */
const WARM_CONNECTIONS = 2;
const DEFAULT_POOL_MAX = loadConfig({}).pgPoolMax;

const SCHEMES = new Set(['postgres:', 'postgresql:']);

/** The URL for pg without Tandem's own `schema` parameter, and that schema. Never echoes the URL. */
export function parsePostgresUrl(url: string): { connectionString: string; schema: string | null } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('DB_URL is not a valid postgres:// URL');
  }
  if (!SCHEMES.has(parsed.protocol)) throw new Error(`DB_URL scheme ${parsed.protocol} is not postgres: or postgresql:`);
  const schema = parsed.searchParams.get('schema');
  parsed.searchParams.delete('schema');
  return { connectionString: parsed.href, schema: schema === '' ? null : schema };
}

/** The URL with its password replaced, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.href;
  } catch {
    return '(unparseable URL)';
  }
}

export function closedError(what: string): TandemError {
  return new TandemError(TandemErrorCode.DB_CLOSED, `${what} is closed`);
}

/**
 * PostgreSQL's own answers (a constraint, a cancelled statement) and Tandem's refusals leave
 * the connection usable; any other failure (a broken socket, a read timeout) may not, nor
 * does a FATAL answer (pg_terminate_backend, a server shutting down: the backend is gone).
 */
function isConnectionFailure(err: unknown): boolean {
  if (err instanceof DatabaseError) return err.severity === 'FATAL' || err.severity === 'PANIC';
  return !(err instanceof TandemError);
}

/** pg runs `query_timeout` per query (client side), though its types only list it per client. */
interface TimedQuery extends QueryConfig {
  query_timeout?: number;
}

export class PostgresStore {
  readonly tables: TableNames;
  private readonly pool: Pool;
  private readonly connectionString: string;
  private readonly connectTimeoutMs: number;
  /** See PostgresOptions.queryTimeoutMs; undefined: the query runner's default. */
  readonly queryTimeoutMs: number | undefined;
  private readonly warm: number;
  private migration: Promise<void> | null = null;
  private users = 0;
  private ending: Promise<void> | null = null;
  /** The last error of an idle pooled connection (PostgreSQL restarted, say); the pool drops that connection. */
  lastIdleError: Error | null = null;

  constructor(opts: PostgresOptions) {
    const { connectionString, schema } = parsePostgresUrl(opts.url);
    this.tables = tableNames(opts.schema ?? schema);
    this.connectionString = connectionString;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.queryTimeoutMs = opts.queryTimeoutMs;
    const max = opts.poolMax ?? DEFAULT_POOL_MAX;
    if (!Number.isInteger(max) || max < 1) throw new Error(`poolMax must be a positive integer, got ${max}`);
    this.warm = Math.min(WARM_CONNECTIONS, max);
    this.pool = new Pool({
      connectionString,
      max,
      min: this.warm,
      connectionTimeoutMillis: this.connectTimeoutMs,
      query_timeout: opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
      application_name: 'tandem', // the URL's `application_name`, if any, wins (pg reads the URL last)
    });
    // Without a listener, an idle connection's error (a server restart) would crash the process.
    this.pool.on('error', (err) => {
      this.lastIdleError = err;
    });
  }

  /** Pool gauges: open, idle and waiting (requests queued for a connection). */
  get poolState(): { total: number; idle: number; waiting: number } {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount };
  }

  /** Resolves once the schema is at the latest version; after a failure, the next call tries again. */
  ready(): Promise<void> {
    if (this.ending) return Promise.reject(closedError('PostgreSQL store'));
    this.migration ??= this.withClient((client) => migrate(client, this.tables)).then(
      () => this.warmUp(),
      (err: unknown) => {
        this.migration = null;
        throw err;
      },
    );
    return this.migration;
  }

  /**
   * Opens the pool's kept connections. A request that finds no idle connection waits for a
   * new one (a handshake, several ms), and meanwhile a later request can take a connection
   * released before it: warm connections keep statements in the order they were issued —
   * ShareDB relies on a query issued before a commit reading before it.
   */
  private async warmUp(): Promise<void> {
    // Each released as soon as it is open: a checked-out client has no pool error listener
    // (see withClient), and the others may take a while to connect.
    await Promise.allSettled(Array.from({ length: this.warm }, () => this.pool.connect().then((client) => client.release())));
  }

  /**
   * Runs `fn` on a pooled connection; one broken by a failure is dropped, not reused.
   *
   * While a client is checked out the pool does not listen for its 'error' events, and pg
   * emits one whenever the socket fails (a reset, PostgreSQL terminating the backend) —
   * besides failing the query. Unheard, it would crash the process; heard here, the query's
   * own failure reports it, and the connection is dropped on release.
   */
  async withClient<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    if (this.ending) throw closedError('PostgreSQL store');
    const client = await this.pool.connect();
    let broken: Error | null = null;
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    const release = (failure?: unknown) => {
      client.off('error', onError);
      client.release(broken ?? (failure !== undefined && isConnectionFailure(failure) ? (failure as Error) : undefined));
    };
    try {
      const result = await fn(client);
      release();
      return result;
    } catch (err) {
      release(err);
      throw err;
    }
  }

  /** One statement, once the schema is ready. */
  async query<R extends QueryResultRow>(text: string, values: unknown[] = []): Promise<QueryResult<R>> {
    await this.ready();
    return this.withClient((client) => client.query<R>(text, values));
  }

  /**
   * One statement that PostgreSQL cancels after `timeoutMs` (it then fails with SQLSTATE
   * 57014). The cancel comes from a connection of its own, so a full pool cannot hold it up,
   * and the statement's connection is released only after the cancel was delivered: it
   * cannot hit the next statement run on that connection. A `timeoutMs` of 0 never cancels.
   */
  async queryWithTimeout<R extends QueryResultRow>(text: string, values: unknown[], timeoutMs: number): Promise<QueryResult<R>> {
    await this.ready();
    return this.withClient(async (client) => {
      if (timeoutMs === 0) return client.query<R>(text, values);
      const pending: { cancel?: Promise<void> } = {};
      const timer = setTimeout(() => {
        pending.cancel = this.cancel(client);
      }, timeoutMs);
      try {
        return await client.query<R>(text, values);
      } finally {
        clearTimeout(timer);
        await pending.cancel;
      }
    });
  }

  private async cancel(client: PoolClient): Promise<void> {
    // pg keeps the server process id of a connection untyped: the one read of it.
    const pid = (client as unknown as { processID: number | null }).processID;
    if (pid === null) return;
    const canceller = new Client({ connectionString: this.connectionString, connectionTimeoutMillis: this.connectTimeoutMs });
    // A socket failure also fails the awaited call below; unheard, its 'error' event would crash the process.
    canceller.on('error', () => undefined);
    try {
      await canceller.connect();
      await canceller.query('SELECT pg_cancel_backend($1)', [pid]);
    } catch {
      // Unreachable now: the statement ends with its connection, or when it is done.
    } finally {
      await canceller.end().catch(() => undefined);
    }
  }

  /**
   * Readiness: the schema migrated and a trivial read of Tandem's table answered, within
   * PING_TIMEOUT_MS whatever PostgreSQL does (the race), and without leaving a connection
   * stuck on a server that stopped answering (the query's own timeout drops it).
   */
  async ping(): Promise<void> {
    if (this.ending) throw closedError('PostgreSQL store');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TandemError(TandemErrorCode.STORAGE_ERROR, `PostgreSQL did not answer within ${PING_TIMEOUT_MS} ms`)),
        PING_TIMEOUT_MS,
      );
    });
    const check = async () => {
      await this.ready();
      const query: TimedQuery = { text: `SELECT 1 FROM ${this.tables.snapshots} LIMIT 1`, query_timeout: PING_TIMEOUT_MS };
      await this.withClient((client) => client.query(query));
    };
    try {
      await Promise.race([check(), timeout]);
    } catch (err) {
      throw asStorageFailure(err, 'PostgreSQL');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Counts a user (a DB or MilestoneDB); the pool ends when the last one releases it. */
  retain(): void {
    if (this.ending) throw closedError('PostgreSQL store');
    this.users++;
  }

  release(): Promise<void> {
    this.users--;
    return this.users <= 0 ? this.end() : Promise.resolve();
  }

  /** Ends the pool once its connections are released; idempotent. */
  end(): Promise<void> {
    this.ending ??= this.pool.end();
    return this.ending;
  }
}
