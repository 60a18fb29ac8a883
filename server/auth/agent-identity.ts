import type ShareDB from 'sharedb';
import type { Identity } from './identity.js';

/** ShareDB's per-connection agent (not exported by name from @types/sharedb). */
export type Agent = ShareDB.middleware.BaseContext['agent'];

/** What Tandem keeps on a ShareDB agent (`agent.custom`, typed here once). */
interface TandemAgentState {
  /** The verified user; absent for anonymous connections (AUTH=none). */
  identity?: Identity;
  /** Read decisions already taken on this connection, by `collection\u0000id`. */
  readable?: Map<string, boolean>;
}

export function agentState(agent: Agent): TandemAgentState {
  // agent.custom is ShareDB's per-connection scratch object (typed `any` upstream).
  return agent.custom as TandemAgentState;
}

/** The verified user of a connection, or null when it is anonymous. */
export function identityOf(agent: Agent | null | undefined): Identity | null {
  return agent ? (agentState(agent).identity ?? null) : null;
}

export function setIdentity(agent: Agent, identity: Identity): void {
  agentState(agent).identity = identity;
}
