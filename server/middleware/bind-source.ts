/**
 * Binds op identity to who sends it. ShareDB de-duplicates resent ops by the client-chosen
 * `src`/`seq`: an op sent under someone else's `src` with a future `seq` would make their
 * real op be answered "already submitted" and never applied. So:
 * - an authenticated connection's source ids must carry its user's tag (`<tag>.…`, derived
 *   from `sub`); its server-assigned id gets the tag too. Stateless, so it holds on every
 *   instance and across restarts;
 * - an anonymous connection owns the source ids it used first until it closes (a client
 *   that reconnects takes its ids back once the old connection is gone).
 */
import type ShareDB from 'sharedb';
import { TandemError, TandemErrorCode } from '../../client/protocol.js';
import { identityOf, type Agent } from '../auth/agent-identity.js';
import { ownsSource } from '../auth/identity.js';

/** Source ids one anonymous connection may hold (its own, plus those of earlier runs' outboxes). */
export const MAX_SOURCES_PER_CONNECTION = 1024;

function foreign(message: string): TandemError {
  return new TandemError(TandemErrorCode.FOREIGN_SOURCE, message);
}

/** The agent's effective source id (ShareDB's private `_src()`: handshake id, else clientId). */
function agentSource(agent: Agent): string {
  return (agent as unknown as { _src(): string })._src();
}

/** What a transport tells the binding about a connection (MessageStream carries it). */
export interface SourceOwnerHint {
  /**
   * A per-client-run secret (the SDK sends one in its socket.io handshake): connections
   * presenting the same one are the same client, so a reconnect takes its source ids back
   * even while the server has not yet noticed that the old connection died.
   */
  readonly sourceKey?: string | null;
}

export function useSourceBinding(backend: ShareDB): void {
  /** Anonymous source id → its owner key; an owner key is live while it has a connection. */
  const owners = new Map<string, string>();
  const live = new Map<string, { connections: number; sources: Set<string> }>();
  const ownerOf = new WeakMap<Agent, string>();

  backend.use('connect', (context, next) => {
    const identity = identityOf(context.agent);
    if (identity) {
      context.agent.clientId = `${identity.sourceTag}.${context.agent.clientId}`;
      return next();
    }
    const hint = context.stream as SourceOwnerHint & NodeJS.EventEmitter;
    const key = hint.sourceKey ? `key:${hint.sourceKey}` : `agent:${context.agent.clientId}`;
    ownerOf.set(context.agent, key);
    const entry = live.get(key) ?? { connections: 0, sources: new Set<string>() };
    entry.connections++;
    live.set(key, entry);
    hint.once('close', () => {
      if (--entry.connections > 0) return;
      live.delete(key);
      for (const src of entry.sources) if (owners.get(src) === key) owners.delete(src);
    });
    next();
  });

  const claim = (agent: Agent, src: unknown): TandemError | null => {
    if (typeof src !== 'string' || src === '') return foreign('source ids must be non-empty strings');
    const identity = identityOf(agent);
    if (identity) return ownsSource(identity, src) ? null : foreign(`source id "${src.slice(0, 64)}" does not belong to this user`);
    const key = ownerOf.get(agent);
    if (key === undefined) return null; // a server-side agent: no client behind it
    const owner = owners.get(src);
    if (owner === key) return null;
    if (owner !== undefined && live.has(owner)) return foreign(`source id "${src.slice(0, 64)}" is in use by another connection`);
    const entry = live.get(key)!;
    if (entry.sources.size >= MAX_SOURCES_PER_CONNECTION)
      return foreign(`a client may use at most ${MAX_SOURCES_PER_CONNECTION} source ids`);
    owners.set(src, key);
    entry.sources.add(src);
    return null;
  };

  backend.use('receive', (context, next) => {
    const message = context.data;
    if (message.a === 'hs') {
      // Without an id the handshake keeps the server-assigned one: claim that instead.
      return next(claim(context.agent, message.id ?? agentSource(context.agent)) ?? undefined);
    }
    if (message.a === 'op') return next(claim(context.agent, message.src ?? agentSource(context.agent)) ?? undefined);
    next();
  });
}
