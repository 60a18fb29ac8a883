/**
 * Presence limits: what one connection's cursors may cost the server and everyone on the
 * channel. Every presence message is broadcast to each subscriber of its channel, and
 * ShareDB moves presence sent at an old document version through every op since, so:
 *
 * - value size: MAX_PRESENCE_BYTES (TANDEM_PRESENCE_TOO_LARGE);
 * - rate: PRESENCE_PER_SECOND updates per connection, burst twice that; a request that makes
 *   every subscriber re-send ('pr', and subscriptions past the first MAX_SUBSCRIPTIONS) has
 *   its own bucket at a tenth of that rate (TANDEM_RATE_LIMITED with retryAfterMs), and a
 *   channel has at most one re-send round per REQUEST_INTERVAL_MS: requests inside the
 *   interval are folded into one round at its end (see RequestPacer);
 * - version lag: presence more than PRESENCE_MAX_LAG versions behind is refused
 *   (TANDEM_PRESENCE_STALE) instead of transformed through the history, and the transform
 *   that is allowed costs one more token per LAG_OPS_PER_TOKEN ops;
 * - what a connection holds: MAX_PRESENCE_IDS_PER_CHANNEL presence ids per channel and
 *   MAX_SUBSCRIPTIONS channels (TANDEM_TOO_MANY_SUBSCRIPTIONS), ids and channels no longer
 *   than MAX_ID_LENGTH allows (TANDEM_INVALID_ID).
 *
 * The application's own connections (`backend.connect()`) are exempt.
 */
import { ShareDbErrorCode, TandemErrorCode, type ErrorCode, type WireError } from '../../client/protocol.js';
import type { Agent } from '../auth/agent-identity.js';
import type { TandemBackend } from '../backend.js';
import type { ResourceLimits } from '../config.js';
import { isServerSide } from '../middleware/enforce-access.js';
import {
  forgetClearedPresences,
  heldChannelCount,
  heldPresences,
  latestDocVersion,
  presenceLimitState,
  type PresenceLimitState,
} from './presence-agent.js';
import { RequestPacer } from './presence-requests.js';
import { jsonByteLength } from './presence-size.js';
import { rateLimited } from './retry-after.js';

/** Presence ids one connection may show on one channel (the SDK uses one per document handle). */
export const MAX_PRESENCE_IDS_PER_CHANNEL = 16;
/** Ops a presence may be transformed through per extra token it pays. */
export const LAG_OPS_PER_TOKEN = 10;
/** At most one presence re-send round per channel this often (per instance). */
export const REQUEST_INTERVAL_MS = 500;

type Next = (err?: unknown) => void;
type Message = Record<string, unknown>;

/*
 * Refusals are plain {code, message} objects, not Errors: ShareDB reads `err.stack` of
 * every error it replies with (to log it), and formatting a stack per refused message made
 * a flood of them cost several times what refusing it does.
 */

function refusal(code: ErrorCode, message: string): WireError {
  return { code, message };
}

function stale(v: number, latest: number | null, maxLag: number): WireError {
  const behind = latest === null ? `more than ${maxLag}` : String(latest - v);
  return refusal(
    TandemErrorCode.PRESENCE_STALE,
    `presence at version ${v} is ${behind} versions behind the document (limit ${maxLag}); send it again at the current version`,
  );
}

function tooMany(message: string): WireError {
  return refusal(TandemErrorCode.TOO_MANY_SUBSCRIPTIONS, message);
}

function rateRefusal(what: string, waitMs: number): WireError {
  return rateLimited(what, waitMs);
}

/** Registers the presence limits (see the module comment) on the backend; close() cancels deferred rounds. */
export function usePresenceLimits(backend: TandemBackend, limits: ResourceLimits): { close(): void } {
  const pacer = new RequestPacer(REQUEST_INTERVAL_MS);
  const requestRound = (channel: string, src: string) => {
    // What ShareDB's agent publishes for a 'pr' (Agent#_requestPresence): every instance's
    // subscribers but the requester are asked to send their presence again.
    backend.pubsub.publish([`$presence.${channel}`], { ch: channel, r: true, src }, (err: unknown) => {
      if (err) backend.emit('error', err);
    });
  };
  backend.use('receive', (context, next) => {
    const message = context.data as Message;
    const action = message.a;
    if ((action !== 'p' && action !== 'pr' && action !== 'ps') || isServerSide(context.agent)) return next();
    const state = presenceLimitState(context.agent, limits);
    if (action === 'p') return checkPresence(backend, context.agent, state, limits, message, next);
    if (action === 'ps' && state.freeSubscribes > 0) {
      state.freeSubscribes--;
      return next();
    }
    const wait = state.requests.take();
    if (wait > 0) return next(rateRefusal('presence requests', wait));
    const channel = message.ch;
    if (action === 'pr' && typeof channel === 'string' && !pacer.admit(channel)) {
      // Within the interval the request is early, not wrong: refusing it would surface as an
      // error in clients that sent it on their own. It is answered now as a ping (the client
      // sees a 'pong' it did not ask for) and served by the channel's round at the end of
      // the interval.
      const src = context.agent.clientId;
      pacer.defer(channel, () => requestRound(channel, src));
      message.a = 'pp';
      delete message.ch;
    }
    next();
  });

  // Only here does ShareDB know the document's version for a first presence on it (it
  // subscribes to the document between 'receive' and 'receivePresence').
  backend.use('receivePresence', (context, next) => {
    const presence = context.presence;
    if (isServerSide(context.agent) || presence.p === null || typeof presence.c !== 'string' || typeof presence.d !== 'string') {
      return next();
    }
    const latest = latestDocVersion(context.agent, presence.c, presence.d);
    if (latest === undefined || typeof presence.v !== 'number') return next();
    const lag = latest - presence.v;
    if (lag > limits.presenceMaxLag) return next(stale(presence.v, latest, limits.presenceMaxLag));
    if (lag > 0) presenceLimitState(context.agent, limits).updates.charge(lag / LAG_OPS_PER_TOKEN);
    next();
  });
  return { close: () => pacer.close() };
}

function checkPresence(
  backend: TandemBackend,
  agent: Agent,
  state: PresenceLimitState,
  limits: ResourceLimits,
  message: Message,
  next: Next,
): void {
  const wait = state.updates.take();
  if (wait > 0) return next(rateRefusal('presence', wait));

  const { ch, id, c, d, v, p } = message;
  if (typeof ch !== 'string' || typeof id !== 'string')
    return next(refusal(ShareDbErrorCode.BADLY_FORMED, 'presence needs a channel (ch) and a presence id (id)'));
  if (id.length > limits.maxIdLength || ch.length > 2 * limits.maxIdLength + 1) {
    return next(refusal(TandemErrorCode.INVALID_ID, `presence id or channel longer than ${limits.maxIdLength} characters`));
  }
  if (p !== null && p !== undefined) {
    const bytes = jsonByteLength(p, limits.maxPresenceBytes);
    if (bytes > limits.maxPresenceBytes) {
      return next(refusal(TandemErrorCode.PRESENCE_TOO_LARGE, `presence value exceeds ${limits.maxPresenceBytes} bytes of JSON`));
    }
  }

  const isDoc = c !== undefined || d !== undefined;
  if (isDoc) {
    // ShareDB keys the broadcast by `ch` but follows and transforms on `c`/`d`: one
    // channel naming other documents would subscribe the connection to each of them.
    if (typeof c !== 'string' || typeof d !== 'string' || ch !== `${c}.${d}`) {
      return next(refusal(ShareDbErrorCode.BADLY_FORMED, 'document presence must be on the channel "<collection>.<id>" of its document'));
    }
    // Without a version ShareDB would transform the presence through the whole history.
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      return next(refusal(ShareDbErrorCode.BADLY_FORMED, 'document presence needs the document version (v)'));
    }
  }

  if (p !== null) {
    return next(hold(state, limits, ch, id) ?? undefined);
  }
  const cleared = () => {
    release(agent, state, limits, ch, id);
    next();
  };
  if (!isDoc) return cleared();

  // A null presence stays null through any op, so it may as well be at the latest version.
  // ShareDB stops following the document before it transforms a null presence, and then
  // reads every op since `v`: without a known version, look one op past the allowed lag.
  const latest = latestDocVersion(agent, c as string, d as string);
  if (latest !== undefined) {
    message.v = Math.max(latest, v as number);
    return cleared();
  }
  const from = (v as number) + limits.presenceMaxLag;
  backend.getOps(agent, c as string, d as string, from, from + 1, {}, (err, ops) => {
    if (err) return next(err);
    if (ops.length > 0) return next(stale(v as number, null, limits.presenceMaxLag));
    cleared();
  });
}

/**
 * Counts a presence id as shown on `ch` by this connection, or says why it may not be. The
 * count is taken here, when the message arrives, not from ShareDB's own record, which is
 * written only after its asynchronous steps: a clear and the presence after it, sent
 * together, would otherwise be judged in the wrong order.
 */
function hold(state: PresenceLimitState, limits: ResourceLimits, ch: string, id: string): WireError | null {
  const ids = state.shown.get(ch);
  if (ids?.has(id)) return null;
  if (ids && ids.size >= MAX_PRESENCE_IDS_PER_CHANNEL) {
    return tooMany(`a connection may show at most ${MAX_PRESENCE_IDS_PER_CHANNEL} presences on one channel`);
  }
  if (!ids && state.shown.size >= limits.maxSubscriptions) {
    return tooMany(`a connection may show presence on at most ${limits.maxSubscriptions} channels`);
  }
  if (ids) ids.add(id);
  else state.shown.set(ch, new Set([id]));
  return null;
}

/** A cleared presence: no longer counted, and ShareDB's record of cleared ones kept small. */
function release(agent: Agent, state: PresenceLimitState, limits: ResourceLimits, ch: string, id: string): void {
  const ids = state.shown.get(ch);
  ids?.delete(id);
  if (ids?.size === 0) state.shown.delete(ch);
  const held = heldPresences(agent, ch);
  if (held && Object.keys(held).length >= MAX_PRESENCE_IDS_PER_CHANNEL) forgetClearedPresences(agent, ch);
  if (!held && heldChannelCount(agent) >= limits.maxSubscriptions) forgetClearedPresences(agent);
}
