/**
 * The React-free core of `usePresence`: one shared store per DocHandle over its
 * PresenceHandle, with snapshots that stay the same object until something changed.
 */
import type { Json1Presence } from '../../ot-types/index.js';
import type { DocHandle } from '../doc-handle.js';
import type { PresenceHandle } from '../presence-handle.js';

/** What `usePresence` renders from. */
export interface PresenceSnapshot<P> {
  /** Everyone else's presence on the document, by presence id (a new Map on every change). */
  readonly remotes: ReadonlyMap<string, P>;
  /** Our own presence as it stands (moved through ops by ShareDB), or null. */
  readonly local: P | null;
}

const NO_REMOTES: ReadonlyMap<string, never> = new Map<string, never>();

/** The snapshot without a document (or with a closed one). */
export const EMPTY_PRESENCE: PresenceSnapshot<never> = Object.freeze({ remotes: NO_REMOTES, local: null });

/** See doc-store.ts: outlives StrictMode's unmount/remount, which happens before timers fire. */
const RELEASE_DELAY_MS = 0;

class PresenceSlot {
  private presence: PresenceHandle | null = null;
  private readonly subscribers = new Set<{ notify: () => void }>();
  private releaseTimer: ReturnType<typeof setTimeout> | null = null;
  private offChange: (() => void) | null = null;
  private remotes: ReadonlyMap<string, Json1Presence> = NO_REMOTES;
  private snapshot: PresenceSnapshot<Json1Presence> = EMPTY_PRESENCE;

  constructor(private readonly doc: DocHandle<unknown>) {}

  subscribe(notify: () => void): () => void {
    const entry = { notify };
    this.subscribers.add(entry);
    if (this.releaseTimer !== null) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    this.attach();
    return () => {
      if (!this.subscribers.delete(entry) || this.subscribers.size > 0) return;
      if (this.releaseTimer !== null) clearTimeout(this.releaseTimer);
      this.releaseTimer = setTimeout(() => this.release(), RELEASE_DELAY_MS);
    };
  }

  getSnapshot(): PresenceSnapshot<Json1Presence> {
    // A closed document's presence is gone (its PresenceHandle stopped telling us anything).
    if (this.doc.closed) return EMPTY_PRESENCE;
    const local = this.presence?.value ?? null;
    if (this.snapshot.remotes !== this.remotes || this.snapshot.local !== local) this.snapshot = { remotes: this.remotes, local };
    return this.snapshot;
  }

  /** Publishes our presence (null hides it); coalesced and rate-limited by PresenceHandle. */
  set(value: Json1Presence | null): void {
    const presence = this.attach();
    if (!presence) return;
    presence.submit(value);
    this.notify();
  }

  /** Starts listening (creating the document's presence on first use); null once the doc is closed. */
  private attach(): PresenceHandle | null {
    if (this.doc.closed) return null;
    this.presence ??= this.doc.presence();
    if (this.offChange === null) {
      this.offChange = this.presence.on('change', () => this.readRemotes());
      this.readRemotes();
    }
    return this.presence;
  }

  private readRemotes(): void {
    // PresenceHandle keeps one live Map; React needs a new object to see a change.
    this.remotes = this.presence && this.presence.remotes.size > 0 ? new Map(this.presence.remotes) : NO_REMOTES;
    this.notify();
  }

  private notify(): void {
    for (const entry of [...this.subscribers]) entry.notify();
  }

  /**
   * The last component showing this presence is gone: hide our cursor from the others and
   * stop listening. The PresenceHandle belongs to the DocHandle and closes with it.
   */
  private release(): void {
    this.releaseTimer = null;
    if (this.subscribers.size > 0 || !this.presence) return;
    this.offChange?.();
    this.offChange = null;
    if (this.presence.value !== null) this.presence.submit(null);
    this.remotes = NO_REMOTES;
  }
}

const slots = new WeakMap<DocHandle<unknown>, PresenceSlot>();

function slotOf(doc: DocHandle<unknown>): PresenceSlot {
  let slot = slots.get(doc);
  if (!slot) {
    slot = new PresenceSlot(doc);
    slots.set(doc, slot);
  }
  return slot;
}

export function subscribePresence(doc: DocHandle<unknown>, notify: () => void): () => void {
  return slotOf(doc).subscribe(notify);
}

export function presenceSnapshot(doc: DocHandle<unknown>): PresenceSnapshot<Json1Presence> {
  return slots.get(doc)?.getSnapshot() ?? EMPTY_PRESENCE;
}

export function setPresence(doc: DocHandle<unknown>, value: Json1Presence | null): void {
  slotOf(doc).set(value);
}
