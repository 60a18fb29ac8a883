import { parseOplogRetention, type OplogRetention } from './storage/oplog-retention.js';
import { DEFAULT_SNAPSHOT_CACHE } from './storage/snapshot-cache.js';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TandemErrorCode } from '../client/protocol.js';
import { DEFAULT_OP_LIMITS } from '../ot-types/index.js';

/** Everything the server reads from its environment, parsed once (see README "Configuration"). */
export interface Config {
  /** TCP port; 0 picks a free one (tests). Env PORT, default 8080. */
  readonly port: number;
  /** Interface to bind. Env HOST, default 127.0.0.1 (loopback only; compose sets 0.0.0.0). */
  readonly host: string;
  /** Store: `sqlite:<path>`, `memory:`, `mongodb://…` or `postgres://…`. Env DB_URL. */
  readonly dbUrl: string;
  /** Redis for cross-instance pub/sub; unset means in-process pub/sub. Env REDIS_URL. */
  readonly redisUrl: string | null;
  /** Channel prefix so several deployments can share one Redis. Env REDIS_PREFIX. */
  readonly redisPrefix: string;
  /**
   * SQLite `synchronous` pragma. Env SQLITE_SYNCHRONOUS, default NORMAL: in WAL mode it loses
   * nothing on a process crash (only possibly the last commits on power loss) and costs
   * ~30 µs per commit instead of ~5 ms for FULL (STACK-NOTES). Set FULL to survive power loss.
   */
  readonly sqliteSynchronous: 'FULL' | 'NORMAL';
  /**
   * SQLite group commit: one transaction per event-loop turn instead of one per commit, with
   * every ack and broadcast held until it is COMMITted. Env SQLITE_GROUP_COMMIT, default true.
   * Set false when several processes write one file and should hold its lock only briefly.
   */
  readonly sqliteGroupCommit: boolean;
  /**
   * Where SQLite copies the WAL back into the database file: `background` (a thread of its
   * own, off the event loop) or `inline` (inside the COMMIT that fills the WAL, SQLite's
   * default). Env SQLITE_CHECKPOINTS, default background.
   */
  readonly sqliteCheckpoints: 'background' | 'inline';
  /**
   * Most connections one instance opens to PostgreSQL (DB_URL=postgres://…); a request that
   * finds them all busy waits for one. Env PG_POOL_MAX, default 10.
   */
  readonly pgPoolMax: number;
  /**
   * Longest wait for PostgreSQL's answer to a statement before it fails with
   * TANDEM_STORAGE_ERROR (the SDK resends) and its connection is dropped: a commit that never
   * gets an answer would otherwise hold its document's queue. Env PG_READ_TIMEOUT_MS, default 10000.
   */
  readonly pgReadTimeoutMs: number;
  /** Largest accepted op or created document, bytes. Env MAX_OP_BYTES, default 256 KiB. */
  readonly maxOpBytes: number;
  /** Deepest accepted nesting in an op or document. Env MAX_OP_DEPTH, default 64. */
  readonly maxOpDepth: number;
  /**
   * Largest socket.io / WebSocket frame, bytes. Env MAX_FRAME_BYTES, default 4 × MAX_OP_BYTES.
   * A frame over this is refused with TANDEM_FRAME_TOO_LARGE; the transport itself cuts the
   * connection only past twice this size.
   */
  readonly maxFrameBytes: number;
  /** Save a milestone snapshot every N versions. Env MILESTONE_INTERVAL, default 500. */
  readonly milestoneInterval: number;
  /**
   * Memory for hot documents' current snapshots (SQLite, PostgreSQL), MiB of JSON. Env
   * SNAPSHOT_CACHE_MB, default 128; 0 turns the cache off (see README, Configuration).
   */
  readonly snapshotCacheMb: number;
  /** SQLite with the cache: a snapshot is written whole at least every N versions. Env SNAPSHOT_FLUSH_OPS, default 1000. */
  readonly snapshotFlushOps: number;
  /** SQLite with the cache: longest a version stays unwritten in a snapshot row, ms. Env SNAPSHOT_FLUSH_MS, default 5000. */
  readonly snapshotFlushMs: number;
  /** Op-log retention (server/storage/oplog-retention.ts). Env OPLOG_RETENTION; unset: keep every op. */
  readonly oplogRetention: OplogRetention | null;
  /** How often op-log compaction runs, ms. Env OPLOG_COMPACT_INTERVAL_MS, default 60000. */
  readonly oplogCompactIntervalMs: number;
  /** Longest wait for in-flight commits on SIGTERM, ms. Env SHUTDOWN_TIMEOUT_MS, default 10000. */
  readonly shutdownTimeoutMs: number;
  /** pino level. Env LOG_LEVEL, default info. */
  readonly logLevel: string;
  /** How connections prove who they are (see AuthConfig). */
  readonly auth: AuthConfig;
  /** JSON access rules per collection (server/auth/rules.ts). Env RULES_FILE; unset: no narrowing. */
  readonly rulesFile: string | null;
  /**
   * Origins allowed for browsers (socket.io, WebSocket upgrades, HTTP routes, embed assets).
   * Env CORS_ORIGINS, comma-separated (`*` allows any). Unset: loopback origins on a loopback
   * bind, none otherwise. Requests without an Origin header (non-browser clients) are not
   * concerned.
   */
  readonly corsOrigins: readonly string[] | null;
  /** Bearer token for /metrics when auth is on (else a valid JWT is needed). Env METRICS_TOKEN. */
  readonly metricsToken: string | null;
  /** Where committed ops are POSTed (server/webhooks/); null: no webhooks. */
  readonly webhooks: WebhookConfig | null;
  /**
   * Longest time a connection may stay without authenticating (socket.io handshake, HTTP
   * request headers), ms. Env AUTH_TIMEOUT_MS, default 10000.
   */
  readonly authTimeoutMs: number;
  /** What one client may cost the server (server/limits/); each refusal has its own code. */
  readonly limits: ResourceLimits;
}

/** Bounds on what one client can make the server do or hold (README "Limits"). */
export interface ResourceLimits {
  /** Largest document after an op, bytes of JSON (TANDEM_DOC_TOO_LARGE). Env MAX_DOC_BYTES, default 16 MiB. */
  readonly maxDocBytes: number;
  /** Longest collection name or document id, characters (TANDEM_INVALID_ID). Env MAX_ID_LENGTH, default 512. */
  readonly maxIdLength: number;
  /** Largest presence value, bytes of JSON (TANDEM_PRESENCE_TOO_LARGE). Env MAX_PRESENCE_BYTES, default 16 KiB. */
  readonly maxPresenceBytes: number;
  /** Presence updates per second per connection, burst twice that (TANDEM_RATE_LIMITED). Env PRESENCE_PER_SECOND, default 30. */
  readonly presencePerSecond: number;
  /**
   * Presence at a document version more than this behind the current one is refused
   * (TANDEM_PRESENCE_STALE) instead of transformed through the whole history. Env
   * PRESENCE_MAX_LAG, default 100.
   */
  readonly presenceMaxLag: number;
  /** Documents, queries and presence channels one connection may subscribe to (TANDEM_TOO_MANY_SUBSCRIPTIONS). Env MAX_SUBSCRIPTIONS, default 1000. */
  readonly maxSubscriptions: number;
  /** Open connections from one IP address (TANDEM_TOO_MANY_CONNECTIONS). Env MAX_CONNECTIONS_PER_IP, default 1000; 0 = no limit. */
  readonly maxConnectionsPerIp: number;
  /** Ops per user (or IP, anonymous) per minute, across instances with Redis (TANDEM_RATE_LIMITED). Env OPS_PER_MINUTE, default 6000. */
  readonly opsPerMinute: number;
  /** Document creations per user (or IP) per minute (TANDEM_RATE_LIMITED). Env CREATES_PER_MINUTE, default 600. */
  readonly createsPerMinute: number;
  /** Queries (fetch or subscribe) per connection per minute (TANDEM_RATE_LIMITED). Env QUERIES_PER_MINUTE, default 600. */
  readonly queriesPerMinute: number;
  /** Documents a query may examine before it is refused (TANDEM_QUERY_TOO_LARGE). Env MAX_QUERY_SCAN, default 10000. */
  readonly maxQueryScan: number;
  /** Documents a query may return (TANDEM_QUERY_TOO_LARGE). Env MAX_QUERY_RESULTS, default 1000. */
  readonly maxQueryResults: number;
  /** Query subscriptions re-run at most this often, ms (not once per op). Env QUERY_POLL_INTERVAL_MS, default 500. */
  readonly queryPollIntervalMs: number;
  /** Bytes queued for a client that does not read before it is dropped (it reconnects and catches up). Env MAX_BUFFERED_BYTES, default 8 MiB. */
  readonly maxBufferedBytes: number;
  /** Ping interval for /sharedb WebSockets; a socket silent for two intervals is closed, ms. Env WS_PING_INTERVAL_MS, default 25000. */
  readonly wsPingIntervalMs: number;
  /** Refused-message log lines per second per instance (the rest are counted, not logged). Env REFUSAL_LOGS_PER_SECOND, default 10. */
  readonly refusalLogsPerSecond: number;
  /**
   * Refused requests a second one connection may cause (burst twice that) before the server
   * stops reading from it until its budget is back, at most 1 s at a time. Env
   * REFUSALS_PER_SECOND, default 20; 0 = never held.
   */
  readonly refusalsPerSecond: number;
}

/**
 * `none`: every connection is anonymous and may do everything (loopback development; on a
 * public interface only with AUTH=none given explicitly). `jwt`: every connection presents a
 * JWT verified with AUTH_JWT_SECRET (HS256), AUTH_JWT_PUBLIC_KEY (PEM text or a file path;
 * RS256/PS256, ES256/384/512 or EdDSA, from the key's type) or AUTH_JWKS_FILE (a JSON Web
 * Key Set file), optionally checked against AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE.
 */
export type AuthConfig =
  | { readonly mode: 'none'; readonly explicit: boolean }
  | {
      readonly mode: 'jwt';
      readonly secret: string | null;
      readonly publicKey: string | null;
      readonly jwksFile: string | null;
      readonly issuer: string | null;
      readonly audience: string | null;
    };

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127(\.\d{1,3}){3}$/.test(bare);
}

function authConfig(source: ConfigSource, host: string): AuthConfig {
  const mode = oneOf(source, 'AUTH', ['none', 'jwt'], '');
  const keys = {
    secret: source.AUTH_JWT_SECRET || null,
    publicKey: source.AUTH_JWT_PUBLIC_KEY || null,
    jwksFile: source.AUTH_JWKS_FILE || null,
  };
  const given = Object.entries(keys)
    .filter(([, v]) => v !== null)
    .map(([k]) => k);
  if (mode === 'none') {
    if (given.length > 0) throw new ConfigError('AUTH=none contradicts AUTH_JWT_SECRET / AUTH_JWT_PUBLIC_KEY / AUTH_JWKS_FILE');
    return { mode: 'none', explicit: true };
  }
  if (given.length === 0) {
    if (mode === 'jwt') throw new ConfigError('AUTH=jwt needs AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_FILE');
    if (!isLoopbackHost(host)) {
      throw new ConfigError(
        `HOST=${host} is reachable from the network but no authentication is configured: set AUTH_JWT_SECRET (or AUTH_JWT_PUBLIC_KEY / AUTH_JWKS_FILE), or AUTH=none to run open on purpose`,
      );
    }
    return { mode: 'none', explicit: false };
  }
  if (given.length > 1) throw new ConfigError('set only one of AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY, AUTH_JWKS_FILE');
  if (keys.secret !== null && Buffer.byteLength(keys.secret) < 32) {
    throw new ConfigError('AUTH_JWT_SECRET must be at least 32 bytes (HS256 needs a key as long as its hash)', 'AUTH_JWT_SECRET');
  }
  return { mode: 'jwt', ...keys, issuer: source.AUTH_JWT_ISSUER || null, audience: source.AUTH_JWT_AUDIENCE || null };
}

function origins(source: ConfigSource): readonly string[] | null {
  const raw = source.CORS_ORIGINS;
  if (raw === undefined || raw.trim() === '') return null;
  const list = raw
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of list) {
    if (origin === '*') continue;
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new ConfigError(`CORS_ORIGINS: "${origin}" is not an origin (scheme://host[:port])`, 'CORS_ORIGINS');
    }
    if (parsed.origin !== origin.replace(/\/$/, '')) {
      throw new ConfigError(`CORS_ORIGINS: "${origin}" is not an origin (scheme://host[:port], no path)`, 'CORS_ORIGINS');
    }
  }
  return Object.freeze(list.map((o) => o.replace(/\/$/, '')));
}

export class ConfigError extends Error {
  readonly code = TandemErrorCode.BAD_CONFIG;

  constructor(
    message: string,
    /** The variable the message is about (its name starts the message), when it is one. */
    readonly variable?: string,
  ) {
    super(message);
  }
}

/** pino's levels, plus `silent`. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export type ConfigSource = Record<string, string | undefined>;

function boolean(source: ConfigSource, name: string, fallback: boolean): boolean {
  const raw = source[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`, name);
}

/** One of `choices`, matched without regard to case; unset or empty gives `fallback`. */
function oneOf<T extends string, F>(source: ConfigSource, name: string, choices: readonly T[], fallback: F): T | F {
  const raw = source[name];
  if (raw === undefined || raw === '') return fallback;
  const choice = choices.find((c) => c.toLowerCase() === raw.toLowerCase());
  if (choice === undefined) throw new ConfigError(`${name} must be one of ${choices.join(', ')}, got "${raw}"`, name);
  return choice;
}

function integer(source: ConfigSource, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = source[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(`${name} must be an integer ${range}, got "${raw}"`, name);
  }
  return value;
}

export interface WebhookConfig {
  /** Env WEBHOOK_URLS, comma-separated http(s) URLs. */
  readonly urls: readonly string[];
  /** HMAC-SHA256 key of the `tandem-signature` header. Env WEBHOOK_SECRET (≥ 32 bytes), required with URLs. */
  readonly secret: string;
  /** A document's ops are gathered this long before a delivery, ms. Env WEBHOOK_BATCH_MS, default 1000. */
  readonly batchMs: number;
  /** Most ops one delivery carries. Env WEBHOOK_MAX_OPS, default 500. */
  readonly maxOps: number;
  /** A delivery not answered 2xx within this is failed and retried, ms. Env WEBHOOK_TIMEOUT_MS, default 10000. */
  readonly timeoutMs: number;
  /** First wait after a failed delivery, doubled per failure up to a minute, ms. Env WEBHOOK_RETRY_MS, default 1000. */
  readonly retryMs: number;
}

function webhookConfig(source: ConfigSource): WebhookConfig | null {
  const list = (source.WEBHOOK_URLS ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (list.length === 0) return null;
  for (const url of list) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      // reported below
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new ConfigError(`WEBHOOK_URLS must be comma-separated http(s) URLs, got "${url.slice(0, 80)}"`, 'WEBHOOK_URLS');
    }
  }
  const secret = source.WEBHOOK_SECRET ?? '';
  if (Buffer.byteLength(secret) < 32) {
    throw new ConfigError(
      'WEBHOOK_SECRET must be set, at least 32 bytes, when WEBHOOK_URLS is: receivers check each delivery with it',
      'WEBHOOK_SECRET',
    );
  }
  return Object.freeze({
    urls: Object.freeze(list),
    secret,
    batchMs: integer(source, 'WEBHOOK_BATCH_MS', 1000, 0),
    maxOps: integer(source, 'WEBHOOK_MAX_OPS', 500, 1, 100_000),
    timeoutMs: integer(source, 'WEBHOOK_TIMEOUT_MS', 10_000, 100),
    retryMs: integer(source, 'WEBHOOK_RETRY_MS', 1000, 10, 60_000),
  });
}

function oplogRetention(source: ConfigSource): OplogRetention | null {
  try {
    return parseOplogRetention(source.OPLOG_RETENTION);
  } catch (err) {
    throw new ConfigError(`OPLOG_RETENTION ${(err as Error).message}`, 'OPLOG_RETENTION');
  }
}

const DEFAULT_DB_URL = 'sqlite:./data/tandem.db';

/**
 * A SQLite file in a folder that does not exist is a typo far more often than a wish: only
 * the default's own folder (./data) is created; any other must exist.
 */
function checkSqliteDirectory(dbUrl: string): void {
  if (!/^sqlite:/i.test(dbUrl) || dbUrl === DEFAULT_DB_URL) return;
  let file = dbUrl.slice('sqlite:'.length);
  if (file.startsWith('//')) file = file.slice(2);
  if (file === '' || file === ':memory:') return;
  const dir = dirname(resolve(file));
  if (!existsSync(dir)) throw new ConfigError(`DB_URL names a SQLite file in ${dir}, which does not exist; create it first`, 'DB_URL');
}

/** Builds the frozen Config from environment-style variables (flags are mapped onto them). */
export function loadConfig(source: ConfigSource = process.env): Config {
  const dbUrl = source.DB_URL || DEFAULT_DB_URL;
  if (!/^(sqlite:.+|memory:(\/\/)?|mongodb(\+srv)?:\/\/.+|postgres(ql)?:\/\/.+)$/i.test(dbUrl)) {
    // Only the scheme is echoed: the rest of a URL may hold credentials.
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(dbUrl)?.[0] ?? '(no scheme)';
    throw new ConfigError(
      `Unsupported DB_URL scheme ${scheme}: expected sqlite:<path>, memory:, mongodb://…, mongodb+srv://…, postgres://… or postgresql://…`,
      'DB_URL',
    );
  }
  checkSqliteDirectory(dbUrl);
  const maxOpBytes = integer(source, 'MAX_OP_BYTES', DEFAULT_OP_LIMITS.maxOpBytes, 1024);
  const host = source.HOST || '127.0.0.1';
  return Object.freeze({
    port: integer(source, 'PORT', 8080, 0, 65_535),
    host,
    dbUrl,
    redisUrl: source.REDIS_URL || null,
    redisPrefix: source.REDIS_PREFIX || 'tandem',
    sqliteSynchronous: oneOf(source, 'SQLITE_SYNCHRONOUS', ['FULL', 'NORMAL'] as const, 'NORMAL'),
    sqliteGroupCommit: boolean(source, 'SQLITE_GROUP_COMMIT', true),
    sqliteCheckpoints: oneOf(source, 'SQLITE_CHECKPOINTS', ['background', 'inline'] as const, 'background'),
    pgPoolMax: integer(source, 'PG_POOL_MAX', 10, 1, 1000),
    pgReadTimeoutMs: integer(source, 'PG_READ_TIMEOUT_MS', 10_000, 1000),
    maxOpBytes,
    maxOpDepth: integer(source, 'MAX_OP_DEPTH', DEFAULT_OP_LIMITS.maxDepth, 2),
    maxFrameBytes: integer(source, 'MAX_FRAME_BYTES', maxOpBytes * 4, 1024),
    milestoneInterval: integer(source, 'MILESTONE_INTERVAL', 500, 1),
    snapshotCacheMb: integer(source, 'SNAPSHOT_CACHE_MB', DEFAULT_SNAPSHOT_CACHE.cacheBytes / (1024 * 1024), 0),
    snapshotFlushOps: integer(source, 'SNAPSHOT_FLUSH_OPS', DEFAULT_SNAPSHOT_CACHE.flushOps, 1),
    snapshotFlushMs: integer(source, 'SNAPSHOT_FLUSH_MS', DEFAULT_SNAPSHOT_CACHE.flushMs, 10),
    oplogRetention: oplogRetention(source),
    oplogCompactIntervalMs: integer(source, 'OPLOG_COMPACT_INTERVAL_MS', 60_000, 100),
    shutdownTimeoutMs: integer(source, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0),
    logLevel: oneOf(source, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    auth: authConfig(source, host),
    rulesFile: source.RULES_FILE || null,
    corsOrigins: origins(source),
    metricsToken: source.METRICS_TOKEN || null,
    webhooks: webhookConfig(source),
    authTimeoutMs: integer(source, 'AUTH_TIMEOUT_MS', 10_000, 100),
    limits: Object.freeze({
      maxDocBytes: integer(source, 'MAX_DOC_BYTES', 16 * 1024 * 1024, 1024),
      maxIdLength: integer(source, 'MAX_ID_LENGTH', 512, 16),
      maxPresenceBytes: integer(source, 'MAX_PRESENCE_BYTES', 16 * 1024, 64),
      presencePerSecond: integer(source, 'PRESENCE_PER_SECOND', 30, 1),
      presenceMaxLag: integer(source, 'PRESENCE_MAX_LAG', 100, 0),
      maxSubscriptions: integer(source, 'MAX_SUBSCRIPTIONS', 1000, 1),
      maxConnectionsPerIp: integer(source, 'MAX_CONNECTIONS_PER_IP', 1000, 0),
      opsPerMinute: integer(source, 'OPS_PER_MINUTE', 6000, 1),
      createsPerMinute: integer(source, 'CREATES_PER_MINUTE', 600, 1),
      queriesPerMinute: integer(source, 'QUERIES_PER_MINUTE', 600, 1),
      maxQueryScan: integer(source, 'MAX_QUERY_SCAN', 10_000, 1),
      maxQueryResults: integer(source, 'MAX_QUERY_RESULTS', 1000, 1),
      queryPollIntervalMs: integer(source, 'QUERY_POLL_INTERVAL_MS', 500, 0),
      maxBufferedBytes: integer(source, 'MAX_BUFFERED_BYTES', 8 * 1024 * 1024, 64 * 1024),
      wsPingIntervalMs: integer(source, 'WS_PING_INTERVAL_MS', 25_000, 100),
      refusalLogsPerSecond: integer(source, 'REFUSAL_LOGS_PER_SECOND', 10, 0),
      refusalsPerSecond: integer(source, 'REFUSALS_PER_SECOND', 20, 0),
    }),
  });
}
