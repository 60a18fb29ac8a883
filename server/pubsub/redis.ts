/**
 * ShareDB pub/sub over Redis: sharedb-redis-pubsub, with the clients, reconnect policy and
 * outage behaviour made ours. Channels are prefixed so several deployments share one Redis.
 *
 * What it adds to sharedb-redis-pubsub, and why:
 * - Local first. An op committed here reaches this instance's subscribers straight away,
 *   not via a Redis round trip; Redis carries it to the *other* instances in an envelope
 *   naming its origin, and an instance drops its own echoes. So clients sharing an instance
 *   keep collaborating live while Redis is down.
 * - Commits never wait for Redis. ShareDB publishes after the commit and does not fail the
 *   submit on a publish error (lib/submit-request.js), but node-redis would *queue* a
 *   PUBLISH while disconnected (its offline queue) and flush it — late — on reconnect. The
 *   publishing client has that queue off: a publish while Redis is away fails at once and
 *   the op is remembered (the newest per document) and re-published when Redis returns, for
 *   instances whose own Redis link never broke (a partition around this instance only).
 * - Subscriptions never wait for Redis either: while it is away a new subscriber is served
 *   from the store now and covered by the catch-up later.
 * - Catch-up (catch-up.ts): whenever the subscriber connection is back, every document with
 *   local subscribers gets, from the store, the ops committed since the last one relayed.
 * - Readiness reports Redis as "ready" only when both connections are up and the catch-up
 *   finished; never from a stale flag.
 */
import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import RedisPubSub from 'sharedb-redis-pubsub';
import type ShareDB from 'sharedb';
import type { Logger } from '../ops/logger.js';
import { deliverToSubscribers, type Turn } from '../turn.js';
import { catchUp, parseDocChannel, type CatchUpTarget, type PublishedOp } from './catch-up.js';
import { initialPubSubState, type PubSubHandle, type PubSubState } from './index.js';

type Callback = (err?: Error | null) => void;
type Listener = (message: string, channel: string) => void;

/** The node-redis v5 client surface used here (its generic types are unwieldy). */
export interface RedisConnection {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  on(event: string, listener: (...args: never[]) => void): unknown;
  subscribe(channel: string, listener: Listener): Promise<void>;
  unsubscribe(channel: string, listener: Listener): Promise<void>;
  once(event: 'ready', listener: () => void): unknown;
  removeListener(event: 'ready', listener: () => void): unknown;
  ping(): Promise<string>;
  close(): Promise<void>;
  destroy(): void;
  unref(): void;
}

/** sharedb-redis-pubsub's instance surface (untyped package), with ShareDB PubSub's fields. */
interface RedisPubSubInstance {
  client: RedisConnection;
  observer: RedisConnection;
  /** ShareDB PubSub: channel → stream id → stream, for streams handed to local agents. */
  streams: Record<string, Record<string, unknown>>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  close(callback?: Callback): void;
  _emit(channel: string, data: unknown): void;
  _publish(channels: string[], data: unknown, callback: Callback): void;
  _subscribe(channel: string, callback: Callback): void;
  _unsubscribe(channel: string, callback: Callback): void;
  _close(): Promise<unknown>;
}
const RedisPubSubBase = RedisPubSub as unknown as new (options: object) => RedisPubSubInstance;

/** What travels through Redis: the ShareDB message and the instance that published it. */
interface Envelope {
  tandem: 1;
  origin: string;
  data: unknown;
}

function isEnvelope(value: unknown): value is Envelope {
  return typeof value === 'object' && value !== null && (value as Envelope).tandem === 1 && 'data' in value;
}

/**
 * A published op (ShareDB's SubmitRequest: `c`, `d`, `v` and one of `op`/`create`/`del`).
 * Presence messages also carry `c`, `d`, `v` but travel on `$presence` channels with `ch`;
 * they are ephemeral and never tracked or replayed.
 */
function opInfo(data: unknown): { c: string; d: string; v: number } | null {
  const op = data as { c?: unknown; d?: unknown; v?: unknown; ch?: unknown } | null;
  if (!op || typeof op !== 'object' || 'ch' in op) return null;
  if (!('op' in op || 'create' in op || 'del' in op)) return null;
  if (typeof op.d !== 'string' || typeof op.c !== 'string' || typeof op.v !== 'number') return null;
  return { c: op.c, d: op.d, v: op.v };
}

function readyWithin(connection: RedisConnection, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      connection.removeListener('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    connection.once('ready', done);
  });
}

/** Most remembered unpublished ops (one per document); older ones are dropped past this. */
const MAX_UNPUBLISHED = 10_000;

export interface RedisPubSubOptions {
  url: string;
  prefix: string;
  logger: Logger;
  /** The store, read by the catch-up. */
  db: ShareDB.DB;
  /** Reconnect delay for attempt n, ms. Default 50·2ⁿ capped at 2 s. */
  reconnectDelayMs?: (attempt: number) => number;
  /** Publishes to Redis wait for this turn's end, after its COMMIT (group commit). */
  turn?: Turn;
}

export class TandemRedisPubSub extends RedisPubSubBase {
  /** Stamped on every envelope this instance publishes, to recognise its own echoes. */
  readonly origin = randomUUID();
  readonly state: PubSubState = initialPubSubState('redis', 'connecting');
  /** Channels ShareDB believes subscribed (its `_subscribe` succeeded, no `_unsubscribe` since). */
  private readonly wanted = new Set<string>();
  /**
   * Per document channel with local streams: its names, and the version after the newest op
   * relayed to them. The newest, not the last in sequence: a subscriber that received v7
   * without v6 saw the gap and fetched v6 itself, so a catch-up can start after v7.
   */
  private readonly relayed = new Map<string, { collection: string; id: string; next: number }>();
  /** Ops whose publish failed, newest per channel set, re-published when Redis is back. */
  private readonly unpublished = new Map<string, { channels: string[]; data: unknown }>();
  /** Bumped when the subscriber connection drops or a catch-up starts; a catch-up stops once stale. */
  private subscriberEpoch = 0;
  private catchingUp = false;
  private closing = false;
  private readonly channelPrefix: string;

  constructor(
    client: RedisConnection,
    observer: RedisConnection,
    private readonly options: RedisPubSubOptions,
  ) {
    super({ client, observer, prefix: options.prefix });
    this.channelPrefix = options.prefix;
    // ShareDB emits publish/subscribe errors on the pubsub; without a listener Node throws.
    this.on('error', (err: Error) => {
      if (!this.closing) options.logger.warn({ err: err.message }, 'redis pub/sub error');
    });
    for (const [role, connection] of [
      ['publisher', client],
      ['subscriber', observer],
    ] as const) {
      connection.on('error', (err: Error) => this.connectionLost(role, connection, err));
      connection.on('ready', () => this.connectionReady(role));
    }
  }

  /** True only while both connections are up and no catch-up is pending. */
  get isReady(): boolean {
    return this.client.isReady && this.observer.isReady && !this.catchingUp && this.state.status === 'ready';
  }

  /** Channels of ShareDB are prefixed by PubSub.publish/subscribe before they reach us. */
  override _publish(channels: string[], data: unknown, callback: Callback): void {
    // Local subscribers directly; an idle turn's ack leaves first (Turn.deliver).
    const turn = this.options.turn;
    deliverToSubscribers(turn, () => {
      for (const channel of channels) this._emit(channel, data);
    });
    if (!turn) {
      this.publishToRedis(channels, data, callback);
      return;
    }
    // Local subscribers' messages are held by the transports until the same point.
    turn.send((discard) => {
      if (discard) callback();
      else this.publishToRedis(channels, data, callback);
    });
  }

  private publishToRedis(channels: string[], data: unknown, callback: Callback): void {
    if (!this.client.isReady) {
      this.remember(channels, data);
      callback();
      return;
    }
    const envelope: Envelope = { tandem: 1, origin: this.origin, data };
    super._publish(channels, envelope, (err) => {
      // Never fail the publish: local delivery happened, the rest is replayed later.
      if (err) this.remember(channels, data);
      callback();
    });
  }

  override _subscribe(channel: string, callback: Callback): void {
    this.wanted.add(channel);
    if (!this.observer.isReady) {
      // Serve the local subscriber now; the catch-up on reconnect subscribes every `wanted`
      // channel and then re-delivers what was published meanwhile. No SUBSCRIBE is queued
      // while disconnected: node-redis 5 resets its pub/sub reply mode on a failed connect,
      // and a SUBSCRIBE queued across that (with no other channel subscribed) is confirmed
      // but its messages then fail to decode ("Cannot read properties of undefined").
      callback();
      return;
    }
    this.observer.subscribe(channel, this.onMessage).then(
      () => callback(),
      // Lost with the connection: serve locally now, the reconnect resubscribes `wanted`.
      (err: Error) => (this.observer.isReady ? callback(err) : callback()),
    );
  }

  override _unsubscribe(channel: string, callback: Callback): void {
    this.wanted.delete(channel);
    this.relayed.delete(channel);
    this.observer.unsubscribe(channel, this.onMessage).then(
      () => callback(),
      // A dead connection drops its subscriptions anyway; the reconnect skips this channel.
      (err: Error) => (this.observer.isReady && !this.closing ? callback(err) : callback()),
    );
  }

  override _emit(channel: string, data: unknown): void {
    const op = opInfo(data);
    // Track document channels only: an op is also emitted on its collection's channel
    // (query subscriptions), which must not be mistaken for that document's.
    if (op && this.streams[channel] && channel === this.docChannel(op.c, op.d)) {
      const seen = this.relayed.get(channel);
      if (!seen || seen.next <= op.v) this.relayed.set(channel, { collection: op.c, id: op.d, next: op.v + 1 });
    }
    super._emit(channel, data);
  }

  /** sharedb-redis-pubsub's `_close` waits for `connect()`, which never settles while Redis is down. */
  override _close(): Promise<unknown> {
    this.closing = true;
    this.subscriberEpoch++;
    const end = async (connection: RedisConnection) => {
      if (!connection.isOpen) return;
      // node-redis cannot cancel a socket it is still creating: destroy() then, and the
      // socket still connects and stays open. So a socket created from now on must not
      // keep the process alive, and a connection on its way up is given a moment to arrive
      // and be closed properly (not while Redis is known to be down: nothing will arrive).
      connection.unref();
      if (!connection.isReady && this.state.status !== 'down') await readyWithin(connection, 1_000);
      if (connection.isReady) await connection.close().catch(() => connection.destroy());
      else connection.destroy();
    };
    return Promise.all([end(this.client), end(this.observer)]);
  }

  private readonly onMessage: Listener = (message, channel) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      this.options.logger.warn({ channel }, 'redis message is not JSON; dropped');
      return;
    }
    if (!isEnvelope(parsed)) return this._emit(channel, parsed); // a stock sharedb-redis-pubsub publisher
    if (parsed.origin !== this.origin) this._emit(channel, parsed.data);
  };

  private remember(channels: string[], data: unknown): void {
    this.state.publishFailures++;
    if (!opInfo(data)) return; // presence is ephemeral: nothing to replay
    const key = channels.join('\n');
    this.unpublished.delete(key); // re-insert: Map order is then oldest-first for eviction
    this.unpublished.set(key, { channels, data });
    if (this.unpublished.size > MAX_UNPUBLISHED) this.unpublished.delete(this.unpublished.keys().next().value!);
  }

  private connectionLost(role: string, connection: RedisConnection, err: Error): void {
    if (this.closing) return;
    if (connection.isReady) {
      // Not a lost connection (node-redis also reports reply-decoding errors this way).
      this.options.logger.warn({ role, err: err.message }, 'redis client error');
      return;
    }
    this.state.lastError = `${role}: ${err.message}`;
    if (role === 'subscriber') this.subscriberEpoch++;
    if (this.state.status === 'down') return; // one log line per outage, not per retry
    if (this.state.status === 'ready') this.state.outages++;
    this.state.status = 'down';
    this.state.downSince ??= new Date().toISOString();
    this.options.logger.warn({ role, err: err.message }, 'redis unavailable');
  }

  private connectionReady(role: 'publisher' | 'subscriber'): void {
    if (this.closing) return;
    if (role === 'publisher') this.republish();
    if (role === 'subscriber') void this.runCatchUp();
    else this.settle();
  }

  /** Re-publishes the remembered ops (newest per document) to the other instances. */
  private republish(): void {
    const pending = [...this.unpublished.values()];
    this.unpublished.clear();
    for (const { channels, data } of pending) {
      if (!this.client.isReady) {
        this.remember(channels, data);
        continue;
      }
      const envelope: Envelope = { tandem: 1, origin: this.origin, data };
      super._publish(channels, envelope, (err) => {
        if (err) this.remember(channels, data);
        else this.state.republished++;
      });
    }
  }

  private async runCatchUp(): Promise<void> {
    const epoch = ++this.subscriberEpoch;
    const current = () => epoch === this.subscriberEpoch && !this.closing && this.observer.isReady;
    this.catchingUp = true;
    this.state.status = 'catching-up';
    const started = Date.now();
    try {
      // 1. Every channel ShareDB relies on is subscribed at Redis again (node-redis
      //    resubscribes confirmed channels itself; this also covers SUBSCRIBEs lost in
      //    flight). Only after that can the store be read without leaving a gap.
      await Promise.all([...this.wanted].map((channel) => this.observer.subscribe(channel, this.onMessage)));
      if (!current()) return;
      // 2. Ops committed meanwhile, from the store, to the local subscribers.
      const result = await catchUp(this.options.db, this.targets(), (target, op) => this.emitCaughtUp(target, op), current);
      if (!current()) return;
      this.state.catchUps++;
      this.state.catchUpOps += result.ops;
      if (result.docs + result.failed > 0 || this.state.downSince) {
        this.options.logger.info({ ...result, ms: Date.now() - started }, 'redis catch-up done');
      }
    } catch (err) {
      if (current()) this.options.logger.warn({ err: (err as Error).message }, 'redis catch-up failed');
      return;
    } finally {
      if (epoch === this.subscriberEpoch) this.catchingUp = false;
    }
    this.settle();
  }

  /** Marks Redis ready once both connections are up and no catch-up is pending. */
  private settle(): void {
    if (!this.client.isReady || !this.observer.isReady || this.catchingUp) return;
    if (this.state.status === 'ready') return;
    const downSince = this.state.downSince;
    this.state.status = 'ready';
    this.state.downSince = null;
    if (downSince) {
      this.options.logger.info({ downMs: Date.now() - Date.parse(downSince), republished: this.state.republished }, 'redis back');
    } else {
      this.options.logger.info('redis connected');
    }
  }

  /** ShareDB's channel names (Backend.getDocChannel / getCollectionChannel), prefixed as PubSub does. */
  private docChannel(collection: string, id: string): string {
    return this.prefixed(`${collection}.${id}`);
  }

  private prefixed(channel: string): string {
    return this.channelPrefix ? `${this.channelPrefix} ${channel}` : channel;
  }

  /** To the document's subscribers, and to this instance's query subscriptions on its collection. */
  private emitCaughtUp(target: CatchUpTarget, op: PublishedOp): void {
    this._emit(target.channel, op);
    const collectionChannel = this.prefixed(target.collection);
    if (this.streams[collectionChannel]) this._emit(collectionChannel, op);
  }

  private targets(): CatchUpTarget[] {
    const targets: CatchUpTarget[] = [];
    for (const channel of Object.keys(this.streams)) {
      const seen = this.relayed.get(channel);
      const names = seen ?? parseDocChannel(channel, this.channelPrefix);
      if (names) targets.push({ channel, collection: names.collection, id: names.id, next: seen?.next ?? null });
    }
    return targets;
  }
}

export function openRedisPubSub(options: RedisPubSubOptions): PubSubHandle {
  const reconnectStrategy = options.reconnectDelayMs ?? ((attempt: number) => Math.min(50 * 2 ** attempt, 2_000));
  const connect = (disableOfflineQueue: boolean) =>
    createClient({
      url: options.url,
      disableOfflineQueue,
      socket: { reconnectStrategy, connectTimeout: 2_000 },
    }) as unknown as RedisConnection;
  // Publisher without offline queue: a PUBLISH while Redis is away fails at once (and is
  // remembered) instead of waiting to be flushed, stale, on reconnect. Subscriber with it:
  // an UNSUBSCRIBE issued while away is then sent after node-redis's own resubscribe, so
  // Redis does not keep feeding a channel nobody here wants.
  const pubsub = new TandemRedisPubSub(connect(true), connect(false), options);
  return {
    kind: 'redis',
    pubsub: pubsub as unknown as ShareDB.PubSub,
    state: () => ({ ...pubsub.state }),
    ping: async () => {
      if (!pubsub.isReady) {
        const { status, downSince, lastError } = pubsub.state;
        const since = downSince ? ` since ${downSince}` : '';
        throw new Error(`redis ${status}${since}${lastError && status !== 'catching-up' ? ` (${lastError})` : ''}`);
      }
      // The flags say connected; a PING proves the server answers right now.
      await pubsub.client.ping();
    },
    // Backend.close() closes the pubsub (and both connections, see _close).
    close: async () => {},
  };
}
