/**
 * Subscriptions per connection (MAX_SUBSCRIPTIONS): documents, queries and presence
 * channels together. Each one holds a pub/sub stream, listeners and, for queries, a poll;
 * without a cap one connection could hold millions. Also a one-pass release of a
 * connection's subscriptions when it goes away, which ShareDB does in quadratic time.
 */
import type { Duplex } from 'node:stream';
import type ShareDB from 'sharedb';
import { TandemError, TandemErrorCode } from '../../client/protocol.js';
import type { Agent } from '../auth/agent-identity.js';
import { isServerSide } from '../middleware/enforce-access.js';

interface Destroyable {
  destroy(): void;
}

/**
 * The one typed boundary to sharedb 7.0.0's Agent subscription state (lib/agent.js), not
 * declared by @types/sharedb. Maps are null-prototype objects that ShareDB mutates itself.
 */
interface AgentSubscriptions {
  /** collection → id → op stream. */
  subscribedDocs: Record<string, Record<string, Destroyable>>;
  /** Query id → query emitter. */
  subscribedQueries: Record<string, Destroyable>;
  /** Presence channel → stream. */
  subscribedPresences: Record<string, Destroyable>;
  /** collection → id → op stream kept to transform presence (same shape as subscribedDocs). */
  latestDocVersionStreams: Record<string, Record<string, Destroyable>>;
}

function subscriptionsOf(agent: Agent): AgentSubscriptions {
  return agent as unknown as AgentSubscriptions;
}

function tooManySubscriptions(max: number): TandemError {
  return new TandemError(
    TandemErrorCode.TOO_MANY_SUBSCRIPTIONS,
    `a connection may hold at most ${max} subscriptions (documents, queries and presence channels; MAX_SUBSCRIPTIONS): unsubscribe first`,
  );
}

function keyCount(object: object | undefined): number {
  return object === undefined ? 0 : Object.keys(object).length;
}

/** Documents, queries and presence channels the agent holds now. */
export function heldSubscriptions(agent: Agent): number {
  const subs = subscriptionsOf(agent);
  let count = keyCount(subs.subscribedQueries) + keyCount(subs.subscribedPresences);
  for (const collection in subs.subscribedDocs) count += keyCount(subs.subscribedDocs[collection]);
  return count;
}

/** Ids named by a bulk request's `b` (an array of ids, or an object of id → version). */
function bulkIds(b: unknown): string[] {
  if (Array.isArray(b)) return b.filter((id): id is string => typeof id === 'string');
  if (typeof b === 'object' && b !== null) return Object.keys(b);
  return [];
}

/**
 * How many subscriptions `message` would add to what the agent holds (0: not a subscribe,
 * or it replaces one the agent holds — ShareDB swaps the old stream for the new).
 */
function added(subs: AgentSubscriptions, message: Record<string, unknown>): number {
  switch (message.a) {
    case 's':
      return subs.subscribedDocs[String(message.c)]?.[String(message.d)] ? 0 : 1;
    case 'bs': {
      const held = subs.subscribedDocs[String(message.c)];
      const ids = bulkIds(message.b);
      return held === undefined ? ids.length : ids.filter((id) => held[id] === undefined).length;
    }
    case 'qs':
      return subs.subscribedQueries[String(message.id)] ? 0 : 1;
    case 'ps':
      return subs.subscribedPresences[String(message.ch)] ? 0 : 1;
    default:
      return 0;
  }
}

const registered = new WeakSet<ShareDB>();

/**
 * Refuses a subscribe (`s`, `bs`, `qs`, `ps`) that would take a connection past `max`
 * with TANDEM_TOO_MANY_SUBSCRIPTIONS; the connection and what it holds stay. Requests
 * accepted but not answered yet count too (ShareDB adds a subscription to the agent only
 * when its reply is ready), so a burst of bulk subscribes cannot pass the cap together.
 * Server-side connections (`backend.connect()`) are not limited. Registers once per backend.
 */
export function useSubscriptionLimits(backend: ShareDB, max: number): void {
  if (registered.has(backend)) return;
  registered.add(backend);
  /** Subscriptions accepted per agent whose reply has not been sent yet. */
  const pendingByAgent = new WeakMap<Agent, number>();
  /** The accepted request messages, with what each counts for. */
  const pendingRequests = new WeakMap<object, number>();

  const settle = (agent: Agent, request: unknown): void => {
    if (typeof request !== 'object' || request === null) return;
    const count = pendingRequests.get(request);
    if (count === undefined) return;
    pendingRequests.delete(request);
    pendingByAgent.set(agent, (pendingByAgent.get(agent) ?? 0) - count);
  };

  backend.use('receive', (context, next) => {
    const agent = context.agent;
    if (isServerSide(agent)) return next();
    // `data` is the parsed client message; MessageStream guarantees a plain object.
    const message = context.data as Record<string, unknown>;
    const adds = added(subscriptionsOf(agent), message);
    if (adds === 0) return next();
    const pending = pendingByAgent.get(agent) ?? 0;
    if (heldSubscriptions(agent) + pending + adds > max) return next(tooManySubscriptions(max));
    pendingByAgent.set(agent, pending + adds);
    pendingRequests.set(message, adds);
    next();
  });
  // A success reply passes the 'reply' middleware with its request; an error reply is the
  // request itself, sent without it. By then ShareDB has added the subscription (or not).
  backend.use('reply', (context, next) => {
    settle(context.agent, context.request);
    next();
  });
  backend.on('send', (agent, message) => settle(agent, message));
}

/**
 * When a client connection ends, releases its document subscriptions in one pass before
 * ShareDB's own cleanup runs. ShareDB destroys each op stream, and each stream's 'end'
 * handler then deletes its id and checks whether the collection's map has keys left —
 * a `for…in` over a large dictionary-mode object, so a connection that had subscribed
 * 20,000 ids blocked the event loop ~30 s when it went away, 40,000 ids ~160 s. Emptying
 * the maps first makes every handler return at its first line.
 */
export function releaseSubscriptionsAtEnd(stream: Duplex, agent: Agent): void {
  const release = (): void => {
    const subs = subscriptionsOf(agent);
    const streams: Destroyable[] = [];
    for (const map of [subs.subscribedDocs, subs.latestDocVersionStreams]) {
      if (map === undefined) continue;
      for (const collection of Object.keys(map)) {
        const byId = map[collection]!;
        delete map[collection];
        for (const id in byId) streams.push(byId[id]!);
      }
    }
    for (const opStream of streams) opStream.destroy();
  };
  // Before ShareDB's listeners (registered by backend.listen): they run the cleanup.
  stream.prependOnceListener('end', release);
  stream.prependOnceListener('close', release);
}
