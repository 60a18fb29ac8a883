/**
 * What presence limits read from ShareDB's Agent (7.0.0) that @types/sharedb does not
 * declare, in one typed place, and the limits' own per-connection state.
 */
import type { ResourceLimits } from '../config.js';
import type { Agent } from '../auth/agent-identity.js';
import { TokenBucket } from './presence-bucket.js';

/** ShareDB's agent fields for presence (lib/agent.js). */
interface AgentPresenceInternals {
  /**
   * Per document with presence from this connection: the latest version ShareDB knows
   * (kept current by an op subscription ShareDB opens on the first presence, dropped when
   * the connection sends a null presence for the document).
   */
  latestDocVersions: Record<string, Record<string, number> | undefined>;
  /**
   * The last presence this connection sent, per channel and presence id, re-broadcast as
   * null when the channel's subscription ends. ShareDB never removes single entries.
   */
  presenceRequests: Record<string, Record<string, { p?: unknown }> | undefined>;
}

function internals(agent: Agent): AgentPresenceInternals {
  // The agent's presence bookkeeping is untyped upstream; these are its 7.0.0 fields.
  return agent as unknown as AgentPresenceInternals;
}

/** The version ShareDB will transform presence on `collection/id` to, if it tracks one. */
export function latestDocVersion(agent: Agent, collection: string, id: string): number | undefined {
  return internals(agent).latestDocVersions?.[collection]?.[id];
}

/** The presence ShareDB holds for this connection on `channel`, by presence id. */
export function heldPresences(agent: Agent, channel: string): Record<string, { p?: unknown }> | undefined {
  return internals(agent).presenceRequests?.[channel];
}

export function heldChannelCount(agent: Agent): number {
  return Object.keys(internals(agent).presenceRequests ?? {}).length;
}

/**
 * Forgets cleared presences (null values) ShareDB would otherwise keep for the life of the
 * connection — a client that opens and closes presence handles makes a new id each time.
 * Their only use is a second null on unsubscribe, which receivers already have.
 */
export function forgetClearedPresences(agent: Agent, channel?: string): void {
  const requests = internals(agent).presenceRequests;
  if (!requests) return;
  for (const name of channel === undefined ? Object.keys(requests) : [channel]) {
    const held = requests[name];
    if (!held) continue;
    for (const id of Object.keys(held)) if (held[id]?.p === null) delete held[id];
    if (Object.keys(held).length === 0) delete requests[name];
  }
}

/** Presence limits kept per connection. */
export interface PresenceLimitState {
  /** Presence updates ('p'). */
  readonly updates: TokenBucket;
  /** Requests that make every subscriber of a channel re-send its presence ('pr', later 'ps'). */
  readonly requests: TokenBucket;
  /** Presence subscriptions not yet charged to `requests` (opening documents is free). */
  freeSubscribes: number;
  /**
   * Presence ids this connection shows (last sent non-null), by channel. ShareDB follows a
   * document (an op subscription) for each channel of document presence, so this also
   * bounds those.
   */
  readonly shown: Map<string, Set<string>>;
}

const states = new WeakMap<Agent, PresenceLimitState>();

/** Presence re-send requests allowed per second: a tenth of the update rate. */
export const REQUESTS_PER_UPDATE = 0.1;

export function presenceLimitState(agent: Agent, limits: ResourceLimits): PresenceLimitState {
  let state = states.get(agent);
  if (!state) {
    const requestRate = Math.max(1, limits.presencePerSecond * REQUESTS_PER_UPDATE);
    state = {
      updates: new TokenBucket(limits.presencePerSecond, 2 * limits.presencePerSecond),
      requests: new TokenBucket(requestRate, Math.max(2 * requestRate, limits.presencePerSecond)),
      freeSubscribes: limits.maxSubscriptions,
      shown: new Map(),
    };
    states.set(agent, state);
  }
  return state;
}
