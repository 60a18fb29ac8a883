/**
 * The React-free core of `useTandemDoc`: one shared, reference-counted store per open
 * document of a client, in the shape `useSyncExternalStore` wants (subscribe + a snapshot
 * that stays the same object until something changed).
 *
 * `client.doc()` hands out one DocHandle per document, and closing it closes it for every
 * user; components come and go independently (and React StrictMode mounts every effect
 * twice), so the handle is opened by the first subscriber and closed a moment after the last
 * one left — unless someone subscribed again meanwhile.
 */
import type { DocHandle, DocOptions } from '../doc-handle.js';
import type { DeepReadonly } from '../doc-types.js';
import { toTandemError } from '../doc-sync.js';
import type { TandemError } from '../protocol.js';
import type { TandemClient } from '../tandem-client.js';

/** What `useTandemDoc` renders from; a new object only when one of its fields changed. */
export interface DocSnapshot<T> {
  /** The open handle (null before the first subscriber opened it, and while it reopens). */
  readonly handle: DocHandle<T> | null;
  /** The document's data, local edits included (undefined until loaded or if it does not exist). */
  readonly data: DeepReadonly<T> | undefined;
  /** Server version the data is based on (null until loaded). */
  readonly version: number | null;
  readonly exists: boolean;
  /** Unacknowledged op batches (`DocHandle.pendingCount`). */
  readonly pending: number;
  /** True once the handle's `ready` resolved. */
  readonly ready: boolean;
  /** The latest error for this document: opening it, an op the server refused, anything else. */
  readonly error: TandemError | null;
  /** Why sending stopped (`DocHandle.stalled`), else null. */
  readonly stalled: TandemError | null;
  /** `DocHandle.canUndo` / `canRedo`: this client has a step of its own to undo / redo. */
  readonly canUndo: boolean;
  readonly canRedo: boolean;
}

/** The snapshot of a document nobody has opened (also for `id === null`). */
export const IDLE_SNAPSHOT: DocSnapshot<never> = Object.freeze({
  handle: null,
  data: undefined,
  version: null,
  exists: false,
  pending: 0,
  ready: false,
  error: null,
  stalled: null,
  canUndo: false,
  canRedo: false,
});

/**
 * How long a document nobody subscribes to stays open. 0 still outlives React's
 * unmount/remount of StrictMode, a changed `key` and other re-subscriptions within one
 * commit, which all happen before a timer can fire; longer lingers would only keep
 * server subscriptions of documents the page no longer shows.
 */
const RELEASE_DELAY_MS = 0;

function sameSnapshot(a: DocSnapshot<unknown>, b: DocSnapshot<unknown>): boolean {
  return (
    a.handle === b.handle &&
    a.data === b.data &&
    a.version === b.version &&
    a.exists === b.exists &&
    a.pending === b.pending &&
    a.ready === b.ready &&
    a.error === b.error &&
    a.stalled === b.stalled &&
    a.canUndo === b.canUndo &&
    a.canRedo === b.canRedo
  );
}

class DocSlot {
  private handle: DocHandle<unknown> | null = null;
  /** The previous handle's close(), while it runs; a new handle waits for it. */
  private closing: Promise<void> | null = null;
  /** One entry per subscription (React may pass the same function twice). */
  private readonly subscribers = new Set<{ notify: () => void }>();
  private releaseTimer: ReturnType<typeof setTimeout> | null = null;
  private detach: Array<() => void> = [];
  private ready = false;
  private error: TandemError | null = null;
  private snapshot: DocSnapshot<unknown> = IDLE_SNAPSHOT;
  /** True while a `whenSynced()` watches for acks (see `watchAcks`). */
  private watchingAcks = false;
  private options: DocOptions<unknown> = {};

  constructor(
    private readonly slots: Map<string, DocSlot>,
    private readonly key: string,
    private readonly client: TandemClient,
    private readonly collection: string,
    private readonly id: string,
  ) {}

  subscribe(notify: () => void, options: DocOptions<unknown>): () => void {
    const entry = { notify };
    this.subscribers.add(entry);
    if (this.releaseTimer !== null) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    // Options of whoever (re)opens the document count, as with client.doc().
    if (this.handle === null) this.options = options;
    if (this.handle === null && this.closing === null) this.open();
    return () => {
      if (!this.subscribers.delete(entry) || this.subscribers.size > 0) return;
      if (this.releaseTimer !== null) clearTimeout(this.releaseTimer);
      this.releaseTimer = setTimeout(() => this.release(), RELEASE_DELAY_MS);
    };
  }

  getSnapshot(): DocSnapshot<unknown> {
    const h = this.handle;
    const next: DocSnapshot<unknown> = {
      handle: h,
      data: h?.data,
      version: h?.version ?? null,
      exists: h?.exists ?? false,
      pending: h?.pendingCount ?? 0,
      ready: this.ready,
      error: this.error,
      stalled: h?.stalled ?? null,
      canUndo: h?.canUndo ?? false,
      canRedo: h?.canRedo ?? false,
    };
    // Same fields, same object: useSyncExternalStore re-renders (or loops) on a new one.
    if (!sameSnapshot(next, this.snapshot)) this.snapshot = next;
    return this.snapshot;
  }

  private open(): void {
    this.error = null;
    let handle: DocHandle<unknown>;
    try {
      handle = this.client.doc(this.collection, this.id, this.options);
    } catch (err) {
      // The client is closed, or the app closed this handle itself and it is still closing.
      this.error = toTandemError(err);
      this.notify();
      return;
    }
    this.handle = handle;
    this.ready = false;
    const changed = (): void => this.notify();
    this.detach = [
      handle.on('change', changed),
      handle.on('stalled', changed),
      handle.on('history', changed),
      handle.on('error', (error) => this.fail(handle, error)),
      handle.on('rejected', (rejection) => this.fail(handle, rejection.error)),
    ];
    handle.ready.then(
      () => {
        if (this.handle !== handle) return;
        this.ready = true;
        this.notify();
      },
      // Also reported as an 'error' event (→ fail); only a failure after close lands here alone.
      () => undefined,
    );
    this.notify();
  }

  private fail(handle: DocHandle<unknown>, error: TandemError): void {
    if (this.handle !== handle) return;
    this.error = error;
    this.notify();
  }

  private notify(): void {
    this.watchAcks();
    for (const entry of [...this.subscribers]) entry.notify();
  }

  /**
   * DocHandle has no event for an acknowledgement (version and pending count change, data
   * does not): while ops are pending, wait for them to be synced, then notify. Acks in
   * between (several batches in flight) show with the next change or the last ack.
   */
  private watchAcks(): void {
    const handle = this.handle;
    if (!handle || this.watchingAcks || handle.closed || handle.stalled || handle.pendingCount === 0) return;
    this.watchingAcks = true;
    const done = (): void => {
      this.watchingAcks = false;
      if (this.handle === handle) this.notify();
    };
    handle.whenSynced().then(done, done);
  }

  private release(): void {
    this.releaseTimer = null;
    if (this.subscribers.size > 0) return;
    const handle = this.handle;
    for (const off of this.detach) off();
    this.detach = [];
    this.handle = null;
    this.ready = false;
    this.error = null;
    if (!handle) {
      this.forget();
      return;
    }
    // Saves what is unsaved (pending ops stay in the outbox) and unsubscribes on the server.
    this.closing = handle.close().then(
      () => this.reopenOrForget(),
      (err: unknown) => {
        this.error = toTandemError(err);
        this.reopenOrForget();
      },
    );
  }

  private reopenOrForget(): void {
    this.closing = null;
    if (this.subscribers.size > 0) this.open();
    else this.forget();
  }

  private forget(): void {
    if (this.slots.get(this.key) === this) this.slots.delete(this.key);
  }
}

const stores = new WeakMap<TandemClient, Map<string, DocSlot>>();

function slotKey(collection: string, id: string): string {
  return JSON.stringify([collection, id]);
}

/**
 * Subscribes to document `collection/id` of `client`, opening it for the first subscriber
 * (with `options`); returns the unsubscribe function. The document is closed shortly after
 * its last subscriber left.
 */
export function subscribeDoc(
  client: TandemClient,
  collection: string,
  id: string,
  options: DocOptions<unknown>,
  notify: () => void,
): () => void {
  let slots = stores.get(client);
  if (!slots) {
    slots = new Map();
    stores.set(client, slots);
  }
  const key = slotKey(collection, id);
  let slot = slots.get(key);
  if (!slot) {
    slot = new DocSlot(slots, key, client, collection, id);
    slots.set(key, slot);
  }
  return slot.subscribe(notify, options);
}

/** The current snapshot of `collection/id` (IDLE_SNAPSHOT while no one has it open). */
export function docSnapshot(client: TandemClient, collection: string, id: string): DocSnapshot<unknown> {
  return stores.get(client)?.get(slotKey(collection, id))?.getSnapshot() ?? IDLE_SNAPSHOT;
}

/** Documents of `client` the hooks hold open or are closing (for tests and devtools). */
export function openDocCount(client: TandemClient): number {
  return stores.get(client)?.size ?? 0;
}
