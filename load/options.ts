/**
 * The load tool's options: their types, defaults, bounds, and the parsers the CLI uses.
 * Everything a run does is decided here, before any process is forked.
 */
import { TandemErrorCode } from '../client/protocol.js';

export const OP_KINDS = ['text', 'struct', 'presence'] as const;
export type OpKind = (typeof OP_KINDS)[number];
/** Relative weights of each kind of action a client takes; they need not sum to 1. */
export type OpMix = Readonly<Record<OpKind, number>>;

/**
 * How simulated clients reach the server:
 * - `socketio`: Tandem's client over socket.io (the adapter in load/adapter.ts);
 * - `sharedb-ws`: a stock ShareDB client over a plain WebSocket (ShareDB's own protocol), used
 *   by the paired benchmark against stock ShareDB and for Tandem's `/sharedb` endpoint.
 */
export type TransportKind = 'socketio' | 'sharedb-ws';

/** Tokens for a server with authentication (AUTH_JWT_SECRET): each client signs its own. */
export interface LoadAuth {
  /** The server's HS256 secret. Left out of reports (see reportedOptions). */
  readonly secret: string;
  /** Extra claims in every token (e.g. `{role: 'editor'}`); `sub` is `load-<n>` per client. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface LoadOptions {
  /** Server URLs; clients are assigned round-robin (client i → urls[i % n]). */
  readonly urls: readonly string[];
  readonly transport: TransportKind;
  readonly clients: number;
  readonly docs: number;
  readonly collection: string;
  /** Document ids are `${docPrefix}-${i}`; unique per run by default so runs do not mix. */
  readonly docPrefix: string;
  readonly mix: OpMix;
  /**
   * Actions per second per client, open loop (Poisson arrivals, sent whether or not earlier
   * ops were acknowledged), or 'max': closed loop, each client keeps exactly one op in flight.
   * 0 = idle clients (connect and subscribe only).
   */
  readonly rate: number | 'max';
  readonly durationMs: number;
  /** Ops run but are not measured for this long after the ramp-up. */
  readonly warmupMs: number;
  /** Client connections are spread evenly over this period. */
  readonly rampMs: number;
  /** Random disconnects per client per minute (0 = no chaos). */
  readonly chaosPerMin: number;
  /** How long a chaos disconnect lasts: uniform in [min, max] ms. */
  readonly chaosOfflineMs: readonly [number, number];
  readonly seed: number;
  /** Load generator processes (child processes); each runs a share of the clients. */
  readonly workers: number;
  /** Allow server URLs that are not loopback (the tool refuses them otherwise). */
  readonly allowRemote: boolean;
  /** Longest wait, after the run, for every client's pending ops to be acknowledged. */
  readonly drainTimeoutMs: number;
  /** Longest wait for all clients to connect and open their documents. */
  readonly connectTimeoutMs: number;
  readonly progress: 'auto' | 'bar' | 'lines' | 'none';
  /** Free text stored in the report (e.g. "W1 tandem"). */
  readonly label: string;
  /** null: connect without tokens (a server without authentication). */
  readonly auth: LoadAuth | null;
}

/** LoadOptions as a report stores them: without the secret. */
export type ReportedOptions = Omit<LoadOptions, 'auth'> & { readonly auth: Omit<LoadAuth, 'secret'> | null };

export function reportedOptions(o: LoadOptions): ReportedOptions {
  const { auth, ...rest } = o;
  return { ...rest, auth: auth && { claims: auth.claims } };
}

/** Hard bounds: a typo must not fork a thousand processes or run all night. */
export const LIMITS = Object.freeze({
  maxClients: 20_000,
  maxWorkers: 16,
  maxDurationMs: 3_600_000,
  maxWarmupMs: 600_000,
  maxRampMs: 600_000,
  maxRatePerClient: 1_000,
});

export const DEFAULT_MIX: OpMix = Object.freeze({ text: 80, struct: 15, presence: 5 });

/** One load generator process per 100 clients, at most one per CPU. */
export function defaultWorkers(clients: number, cpus: number): number {
  return Math.max(1, Math.min(cpus, LIMITS.maxWorkers, Math.ceil(clients / 100)));
}

/** A load option that cannot be used: the same code as any other bad configuration or flag. */
export class OptionError extends Error {
  readonly code = TandemErrorCode.BAD_CONFIG;
}

/** "20s", "500ms", "2m", "1h", or a bare number of seconds → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new OptionError(`not a duration: "${text}" (use e.g. 500ms, 20s, 2m)`);
  const value = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(value * factor);
}

/** "text=80,struct=15,presence=5" (missing kinds get 0) → OpMix. */
export function parseMix(text: string): OpMix {
  const mix: Record<OpKind, number> = { text: 0, struct: 0, presence: 0 };
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name, raw] = part.split('=');
    if (!OP_KINDS.includes(name as OpKind)) {
      throw new OptionError(`unknown op kind "${name}" in --mix (kinds: ${OP_KINDS.join(', ')})`);
    }
    const weight = Number(raw);
    if (!Number.isFinite(weight) || weight < 0) throw new OptionError(`bad weight in --mix: "${part}"`);
    mix[name as OpKind] = weight;
  }
  if (OP_KINDS.every((k) => mix[k] === 0)) throw new OptionError('--mix needs at least one positive weight');
  return Object.freeze(mix);
}

export function parseRate(text: string): number | 'max' {
  if (text === 'max') return 'max';
  const rate = Number(text);
  if (!Number.isFinite(rate) || rate < 0) throw new OptionError(`--rate must be a number ≥ 0 or "max", got "${text}"`);
  return rate;
}

/** "100-2000" or "500" (ms) → [min, max]. */
export function parseRange(text: string): [number, number] {
  const parts = text.split('-').map((p) => parseDuration(/^\s*\d+(\.\d+)?\s*$/.test(p) ? `${p}ms` : p));
  const [min, max] = parts.length === 1 ? [parts[0]!, parts[0]!] : [parts[0]!, parts[1]!];
  if (parts.length > 2 || min > max) throw new OptionError(`bad range "${text}" (use min-max in ms)`);
  return [min, max];
}

/** Claims the tool sets itself in every token: `sub` per client, `iat` and `exp`. */
const OWN_CLAIMS = ['sub', 'iat', 'exp'];

/** '{"role":"editor"}' → claims (a JSON object). */
export function parseClaims(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new OptionError(`--jwt-claims must be a JSON object, got "${text}"`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new OptionError(`--jwt-claims must be a JSON object, got "${text}"`);
  const own = OWN_CLAIMS.filter((k) => k in value);
  if (own.length) throw new OptionError(`--jwt-claims: ${own.join(', ')} are set by the load tool (sub is load-<n> per client)`);
  return value as Record<string, unknown>;
}

const LOOPBACK_HOSTS = new Set(['localhost', '::1', '[::1]']);

/** True for localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  return LOOPBACK_HOSTS.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OptionError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

/** Throws OptionError when the options are inconsistent or out of bounds. */
export function validateOptions(o: LoadOptions): LoadOptions {
  if (o.urls.length === 0) throw new OptionError('give at least one server URL (--url)');
  for (const url of o.urls) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new OptionError(`not a URL: "${url}"`);
    }
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(parsed.protocol)) {
      throw new OptionError(`unsupported URL scheme in "${url}" (http, https, ws, wss)`);
    }
    if (!o.allowRemote && !isLoopbackUrl(url)) {
      throw new OptionError(`refusing non-loopback target ${parsed.host}: pass --allow-remote to load a remote server`);
    }
  }
  checkInt('--clients', o.clients, 1, LIMITS.maxClients);
  checkInt('--docs', o.docs, 1, o.clients);
  checkInt('--workers', o.workers, 1, Math.min(LIMITS.maxWorkers, o.clients));
  checkInt('--duration', o.durationMs, 100, LIMITS.maxDurationMs);
  checkInt('--warmup', o.warmupMs, 0, LIMITS.maxWarmupMs);
  checkInt('--ramp', o.rampMs, 0, LIMITS.maxRampMs);
  if (o.rate !== 'max' && (o.rate < 0 || o.rate > LIMITS.maxRatePerClient)) {
    throw new OptionError(`--rate must be in [0, ${LIMITS.maxRatePerClient}] or "max"`);
  }
  if (!(o.chaosPerMin >= 0 && o.chaosPerMin <= 600)) throw new OptionError('--chaos must be in [0, 600] per minute');
  if (o.chaosOfflineMs[0] < 0 || o.chaosOfflineMs[1] > 60_000) throw new OptionError('--chaos-offline must be within 0-60000 ms');
  if (!/^[\w.-]{1,64}$/.test(o.collection)) throw new OptionError('--collection: letters, digits, _ . - only');
  if (!/^[\w.-]{1,80}$/.test(o.docPrefix)) throw new OptionError('--doc-prefix: letters, digits, _ . - only');
  // As the server checks AUTH_JWT_SECRET: a shorter one cannot be the server's.
  if (o.auth && Buffer.byteLength(o.auth.secret) < 32)
    throw new OptionError('--jwt-secret must be at least 32 bytes, as the server requires');
  return o;
}

export function clientsPerDoc(o: Pick<LoadOptions, 'clients' | 'docs'>): number {
  return o.clients / o.docs;
}
