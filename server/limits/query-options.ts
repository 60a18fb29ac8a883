/**
 * What the 'query' middleware tells the stores about one query, through the options object
 * ShareDB hands to `db.query` / `db.queryPoll` (the same object for every poll of a
 * subscription). Symbol keys: a client's options arrive as JSON and cannot carry them.
 */
import { loadConfig, type ResourceLimits } from '../config.js';

/** The per-query bounds the in-process stores apply (README "Limits"). */
export interface QueryLimits {
  /** MAX_QUERY_SCAN: collections with more live documents are not scanned for a client. */
  readonly maxScan: number;
  /** MAX_QUERY_RESULTS: a client query returning more documents is refused. */
  readonly maxResults: number;
}

export function queryLimitsOf(limits: Pick<ResourceLimits, 'maxQueryScan' | 'maxQueryResults'>): QueryLimits {
  return { maxScan: limits.maxQueryScan, maxResults: limits.maxQueryResults };
}

/** The configuration defaults: what a store applies until useQueryLimits configures it. */
export const DEFAULT_QUERY_LIMITS: QueryLimits = queryLimitsOf(loadConfig({}).limits);

/** Set on queries of the application's own (server-side) connections: no scan or result caps. */
const UNCAPPED = Symbol('tandem.query.uncapped');
/** The connection a query belongs to, for fair turns between clients (query-scan.ts). */
const OWNER = Symbol('tandem.query.owner');

type MarkedOptions = { [UNCAPPED]?: true; [OWNER]?: unknown };

function marked(options: unknown): MarkedOptions | null {
  return typeof options === 'object' && options !== null ? (options as MarkedOptions) : null;
}

export function markQuery(options: unknown, owner: unknown, uncapped: boolean): void {
  const target = marked(options);
  if (!target) return;
  target[OWNER] = owner;
  if (uncapped) target[UNCAPPED] = true;
  else delete target[UNCAPPED];
}

/** The caps for a query with these options. */
export function capsFor(options: unknown, limits: QueryLimits): QueryLimits {
  return marked(options)?.[UNCAPPED] ? { maxScan: Infinity, maxResults: Infinity } : limits;
}

export function ownerOf(options: unknown): unknown {
  return marked(options)?.[OWNER];
}

/** Implemented by stores that apply QueryLimits themselves (SQLite, memory). */
export interface QueryLimitedDb {
  setQueryLimits(limits: QueryLimits): void;
}

export function isQueryLimitedDb(db: unknown): db is QueryLimitedDb {
  return typeof (db as Partial<QueryLimitedDb> | null)?.setQueryLimits === 'function';
}
