/**
 * Thin adapters from the SDK's document and presence handles (client/doc-handle.ts,
 * client/presence-handle.ts) to the bindings' own interfaces (types.ts). Written against
 * the shapes only, so a binding never reaches into the SDK's internals.
 */
import type { JSONOp } from 'ot-json1';
import type { BindableDoc, CursorPresence, PresenceChannel, PresenceUser, RemotePresences } from './types.js';

/** What the bindings use of the SDK's DocHandle. */
export interface DocHandleLike {
  readonly data: unknown;
  submit(op: JSONOp): void;
  on(event: 'op', listener: (op: JSONOp, meta: { source: string }) => void): () => void;
  on(event: 'change', listener: () => void): () => void;
  undo?(): boolean;
  redo?(): boolean;
}

/** What the bindings use of the SDK's PresenceHandle. */
export interface PresenceHandleLike {
  readonly remotes: ReadonlyMap<string, unknown>;
  submit(value: never): void;
  on(event: 'change', listener: (id: string, value: unknown) => void): () => void;
}

export function bindableDoc(handle: DocHandleLike): BindableDoc {
  const { undo, redo } = handle;
  return {
    get data() {
      return handle.data;
    },
    submit: (op) => handle.submit(op),
    // The SDK's history: the bindings' undo keys revert this user's edits only.
    ...(undo && redo ? { undo: () => undo.call(handle), redo: () => redo.call(handle) } : {}),
    onOp: (listener) => handle.on('op', (op) => listener(op)),
    onReset(listener) {
      // The SDK emits 'change' right after every 'op' too; only a change without an op
      // (load, create, delete, restore from the outbox) replaced the data wholesale.
      let sawOp = false;
      const offOp = handle.on('op', () => {
        sawOp = true;
      });
      const offChange = handle.on('change', () => {
        if (sawOp) sawOp = false;
        else listener();
      });
      return () => {
        offOp();
        offChange();
      };
    },
  };
}

function asUser(value: unknown): PresenceUser | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { name, color } = value as Record<string, unknown>;
  return typeof name === 'string' && typeof color === 'string' ? { name, color } : undefined;
}

/** A remote presence value as the bindings expect it, or null when it is not one of ours. */
export function asCursorPresence(value: unknown): CursorPresence | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!Array.isArray(v.path) || !v.path.every((k) => typeof k === 'string' || typeof k === 'number')) return null;
  const int = (n: unknown): number | undefined => (Number.isInteger(n) && (n as number) >= 0 ? (n as number) : undefined);
  const user = asUser(v.user);
  const anchor = int(v.anchor);
  const head = int(v.head);
  return {
    path: v.path as CursorPresence['path'],
    ...(anchor !== undefined ? { anchor } : {}),
    ...(head !== undefined ? { head } : {}),
    ...(user ? { user } : {}),
  };
}

/**
 * Presence for the bindings. Submits are coalesced to one per microtask: a keystroke
 * moves the caret in several events, and ShareDB queues every presence message it is given
 * while ops are pending.
 */
export function presenceChannel(handle: PresenceHandleLike): PresenceChannel & { close(): void } {
  let latest: CursorPresence | null = null;
  let scheduled = false;
  let closed = false;
  const remotes = (): RemotePresences => {
    const out = new Map<string, CursorPresence>();
    for (const [id, value] of handle.remotes) {
      const p = asCursorPresence(value);
      if (p) out.set(id, p);
    }
    return out;
  };
  return {
    submit(value) {
      latest = value;
      if (scheduled || closed) return;
      scheduled = true;
      queueMicrotask(() => {
        scheduled = false;
        // The SDK types submit with the caller's presence type; ours is a Json1Presence.
        if (!closed) handle.submit(latest as never);
      });
    },
    onChange: (listener) => handle.on('change', () => listener(remotes())),
    remotes,
    close() {
      closed = true;
    },
  };
}
