import type { Connection, Doc, LocalPresence, Presence } from 'sharedb/lib/client/index.js';
import { transformPresence, type Json1Presence, type JSONOp } from '../ot-types/index.js';
import { toTandemError } from './doc-sync.js';
import { Emitter } from './emitter.js';
import { jsonEqual } from './rebase.js';
import { presenceInternals, untilCalledBackOrOffline } from './sharedb-internals.js';
import { retryAfterOf, TandemErrorCode, type TandemError } from './protocol.js';

/**
 * Fewest milliseconds between two presence updates sent. The server allows PRESENCE_PER_SECOND
 * per connection (default 30, burst 60); a caret dragged with the mouse changes at 60 Hz. Only
 * the latest value matters, so updates in between are coalesced and the last one always sent.
 */
const MIN_SEND_INTERVAL_MS = 66;

export type PresenceEvents<P> = {
  /** A remote presence appeared or moved (`value`), or left (`null`). */
  change: [id: string, value: P | null];
  error: [error: TandemError];
};

/**
 * Cursors and selections of everyone on one document, through ShareDB's doc presence.
 *
 * Values are json1 paths plus text offsets (`Json1Presence`); ShareDB moves every value —
 * ours and remote ones — through each op with Tandem's json1 `transformPresence`. Presence
 * travels through the server's pub/sub, so it works across instances; a client that
 * disconnects is removed for everyone by its server.
 */
export class PresenceHandle<P extends Json1Presence = Json1Presence> extends Emitter<PresenceEvents<P>> {
  private readonly presence: Presence<P | null>;
  private readonly local: LocalPresence<P | null>;
  private readonly doc: Doc;
  private readonly remote = new Map<string, P>();
  private readonly stopWatching: () => void;
  private closed = false;
  private closedPromise: Promise<void> = Promise.resolve();
  /** The value to show others: what was last submitted, sent or about to be. */
  private latest: P | null = null;
  private lastSentAt = 0;
  private sendTimer: ReturnType<typeof setTimeout> | null = null;
  /** A refusal of the same value is retried once (stale); then reported. */
  private retriedStale = false;

  /** @internal Created by `DocHandle.presence()`. */
  constructor(
    private readonly connection: Connection,
    collection: string,
    id: string,
    presenceId: string,
    watchConnection: (listener: (online: boolean) => void) => () => void,
  ) {
    super();
    this.presence = connection.getDocPresence(collection, id) as Presence<P | null>;
    this.presence.on('receive', this.onReceive);
    this.presence.on('error', this.onError);
    this.presence.subscribe((err) => {
      if (err) this.onError(err);
    });
    this.local = this.presence.create(presenceId);
    // ShareDB moves its own copy of our value through each op; a value we hold back (see
    // MIN_SEND_INTERVAL_MS) must move the same way, or it would land where the text was.
    this.doc = connection.get(collection, id);
    this.doc.on('op', this.onDocOp);
    this.doc.on('load', this.onDocLoad);
    this.local.on('error', this.onError);
    this.stopWatching = watchConnection((online) => (online ? this.resend() : this.forgetRemotes()));
  }

  /** Remote presences by presence id, already moved through every op we have applied. */
  get remotes(): ReadonlyMap<string, P> {
    return this.remote;
  }

  /** Our own presence as it stands now (ShareDB moves it through ops too). */
  get value(): P | null {
    // While an update waits to be sent, it is what we show; once sent, ShareDB moves it.
    return this.sendTimer !== null ? this.latest : (this.local.value ?? null);
  }

  /**
   * Publishes our cursor/selection; `null` hides it. Updates closer together than the
   * server's presence rate allows are coalesced: the latest is sent, never lost. Errors
   * arrive as 'error' events.
   */
  submit(value: P | null): void {
    if (this.closed) return;
    this.latest = value;
    this.retriedStale = false;
    this.scheduleSend(Math.max(0, this.lastSentAt + MIN_SEND_INTERVAL_MS - Date.now()));
  }

  clear(): void {
    this.submit(null);
  }

  /**
   * Hides our presence for others and stops listening. Resolves once the server has taken
   * the removal (or at once while offline, when the server has already forgotten us), so a
   * client that closes its connection next does not cut the removal off.
   */
  close(): Promise<void> {
    if (this.closed) return this.closedPromise;
    this.closed = true;
    this.stopWatching();
    this.presence.off('receive', this.onReceive);
    this.presence.off('error', this.onError);
    this.local.off('error', this.onError);
    // Late errors of a closed presence (e.g. its unsubscribe failing) are nobody's business
    // any more; without a listener ShareDB's emitter would throw them.
    if (this.sendTimer !== null) clearTimeout(this.sendTimer);
    this.sendTimer = null;
    this.doc.off('op', this.onDocOp);
    this.doc.off('load', this.onDocLoad);
    const ignore = () => undefined;
    this.presence.on('error', ignore);
    this.local.on('error', ignore);
    // ShareDB calls back only once connected; offline, the server already forgot us.
    this.closedPromise = untilCalledBackOrOffline(this.connection, (done) => this.presence.destroy(() => done()));
    this.remote.clear();
    this.removeAllListeners();
    return this.closedPromise;
  }

  private readonly onDocOp = (op: unknown, source: unknown): void => {
    if (this.sendTimer === null || this.latest === null) return;
    // Our presence type keeps the value's other fields (user…) as they are.
    this.latest = transformPresence(this.latest, op as JSONOp, Boolean(source)) as P | null;
  };

  /**
   * ShareDB drops every remote presence when the document loads a snapshot (its subscribe,
   * a fetch to catch up with a presence ahead of it, a reload), including one that arrived
   * just before: that user would stay invisible until they move. Ask everyone again, so what
   * they send is applied to the loaded document.
   */
  private readonly onDocLoad = (): void => {
    if (this.connection.canSend) presenceInternals(this.presence)._requestRemotePresence();
  };

  private readonly onReceive = (id: string, value: P | null): void => {
    if (value !== null && value !== undefined && !this.fromLiveInstance(id, value)) return;
    if (value === null || value === undefined) {
      if (!this.remote.delete(id)) return;
      this.emit('change', id, null);
      return;
    }
    // ShareDB re-emits a remote presence whenever it moves it through an op, also when the
    // op did not move it: a change is reported once per actual change.
    const previous = this.remote.get(id);
    if (previous !== undefined && jsonEqual(previous, value)) return;
    this.remote.set(id, value);
    this.emit('change', id, value);
  };

  /**
   * ShareDB applies a received presence later (after `whenNothingPending`, a separate task in
   * a browser) and the instance that does so may have been destroyed meanwhile by
   * `forgetRemotes` — or replaced by a newer one for the same id. Such a late value would
   * bring back someone we stopped hearing about (possibly for good: their departure was sent
   * while we were offline). ShareDB emits the very value object its live instance holds, so a
   * value that is not that object comes from a dead instance: it is undone and ignored.
   */
  private fromLiveInstance(id: string, value: P): boolean {
    const internals = presenceInternals(this.presence);
    const live = internals._remotePresenceInstances[id];
    if (live?.value === value) return true;
    if (live) internals.remotePresences[id] = live.value;
    else delete internals.remotePresences[id];
    return false;
  }

  private readonly onError = (err: unknown): void => {
    if (!this.emit('error', toTandemError(err))) console.warn('Tandem presence error', err);
  };

  private scheduleSend(delayMs: number): void {
    if (this.closed) return;
    if (this.sendTimer !== null) {
      if (delayMs > 0) return; // the pending send will carry the latest value
      clearTimeout(this.sendTimer);
      this.sendTimer = null;
    }
    if (delayMs > 0) {
      this.sendTimer = setTimeout(() => {
        this.sendTimer = null;
        this.send();
      }, delayMs);
      return;
    }
    this.send();
  }

  private send(): void {
    if (this.closed) return;
    this.lastSentAt = Date.now();
    const value = this.latest;
    this.local.submit(value, (err) => {
      if (err) this.refused(err, value);
    });
  }

  /** Over the rate: send the latest value once the server's wait passed. Stale: once more. */
  private refused(err: unknown, value: P | null): void {
    const error = toTandemError(err);
    if (this.closed || value !== this.latest) return; // a newer value is on its way
    if (error.code === TandemErrorCode.RATE_LIMITED) {
      this.scheduleSend(Math.max(MIN_SEND_INTERVAL_MS, retryAfterOf(error) ?? 1_000));
      return;
    }
    if (error.code === TandemErrorCode.PRESENCE_STALE && !this.retriedStale) {
      // Sent before the document caught up (e.g. right after a reconnect): ShareDB sends the
      // same value at the document's current version now.
      this.retriedStale = true;
      this.scheduleSend(MIN_SEND_INTERVAL_MS);
      return;
    }
    this.onError(error);
  }

  /** A server forgets our presence when our connection drops; send it again. */
  private resend(): void {
    const value = this.latest ?? this.local.value;
    if (!this.closed && value !== null && value !== undefined) this.submit(value);
  }

  /**
   * Offline we stop hearing about others: drop them rather than show stale cursors — here and
   * in ShareDB, which would otherwise keep moving them through our offline edits and bring
   * them back (also someone who left meanwhile). Back online, ShareDB re-subscribes and asks
   * everyone present to send their presence again, so we then hold exactly the server's view.
   */
  private forgetRemotes(): void {
    const internals = presenceInternals(this.presence);
    for (const id of Object.keys(internals._remotePresenceInstances)) internals._removeRemotePresence(id);
    const ids = [...this.remote.keys()];
    this.remote.clear();
    for (const id of ids) this.emit('change', id, null);
  }
}
