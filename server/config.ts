import { DEFAULT_OP_LIMITS } from '../ot-types/index.js';

/** Everything the server reads from its environment, parsed once (see README "Configuration"). */
export interface Config {
  /** TCP port; 0 picks a free one (tests). Env PORT, default 8080. */
  readonly port: number;
  /** Interface to bind. Env HOST, default 127.0.0.1 (loopback only; compose sets 0.0.0.0). */
  readonly host: string;
  /** Store: `sqlite:<path>`, `memory:` or `mongodb://…`. Env DB_URL. */
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
  /** Longest wait for in-flight commits on SIGTERM, ms. Env SHUTDOWN_TIMEOUT_MS, default 10000. */
  readonly shutdownTimeoutMs: number;
  /** pino level. Env LOG_LEVEL, default info. */
  readonly logLevel: string;
}

export class ConfigError extends Error {
  readonly code = 'TANDEM_BAD_CONFIG';
}

export type ConfigSource = Record<string, string | undefined>;

function boolean(source: ConfigSource, name: string, fallback: boolean): boolean {
  const raw = source[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function integer(source: ConfigSource, name: string, fallback: number, min: number): number {
  const raw = source[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  }
  return value;
}

/** Builds the frozen Config from environment-style variables (flags are mapped onto them). */
export function loadConfig(source: ConfigSource = process.env): Config {
  const synchronous = (source.SQLITE_SYNCHRONOUS ?? 'NORMAL').toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') {
    throw new ConfigError(`SQLITE_SYNCHRONOUS must be FULL or NORMAL, got "${source.SQLITE_SYNCHRONOUS}"`);
  }
  const dbUrl = source.DB_URL || 'sqlite:./data/tandem.db';
  if (!/^(sqlite:.+|memory:(\/\/)?|mongodb(\+srv)?:\/\/.+)$/i.test(dbUrl)) {
    // Only the scheme is echoed: the rest of a URL may hold credentials.
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(dbUrl)?.[0] ?? '(no scheme)';
    throw new ConfigError(
      `Unsupported DB_URL scheme ${scheme}: expected sqlite:<path>, memory:, mongodb://… or mongodb+srv://…`,
    );
  }
  const maxOpBytes = integer(source, 'MAX_OP_BYTES', DEFAULT_OP_LIMITS.maxOpBytes, 1024);
  return Object.freeze({
    port: integer(source, 'PORT', 8080, 0),
    host: source.HOST || '127.0.0.1',
    dbUrl,
    redisUrl: source.REDIS_URL || null,
    redisPrefix: source.REDIS_PREFIX || 'tandem',
    sqliteSynchronous: synchronous,
    sqliteGroupCommit: boolean(source, 'SQLITE_GROUP_COMMIT', true),
    maxOpBytes,
    maxOpDepth: integer(source, 'MAX_OP_DEPTH', DEFAULT_OP_LIMITS.maxDepth, 2),
    maxFrameBytes: integer(source, 'MAX_FRAME_BYTES', maxOpBytes * 4, 1024),
    milestoneInterval: integer(source, 'MILESTONE_INTERVAL', 500, 1),
    shutdownTimeoutMs: integer(source, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0),
    logLevel: source.LOG_LEVEL || 'info',
  });
}
