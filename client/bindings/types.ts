/**
 * The small surface the editor bindings need from a document and from presence. The SDK's
 * doc handle and ShareDB's own Doc both fit through thin adapters (sharedb-adapter.ts,
 * sdk-adapter.ts), so bindings do not depend on either directly.
 */
import type { JSONOp, Path } from 'ot-json1';

/** Who made a change the binding applied: this binding (local) or anyone else (remote). */
export type ChangeOrigin = 'local' | 'remote';

export interface BindableDoc {
  /** The current document, including this client's own unacknowledged ops. */
  readonly data: unknown;
  /**
   * Applies `op` to `data` synchronously (optimistically) and queues it for the server.
   * The bindings rely on `data` reflecting the op when this returns.
   */
  submit(op: JSONOp): void;
  /**
   * Calls `listener` after every op applied to `data`, local or remote, with the op as
   * applied (remote ops already transformed past this client's pending ops), in order.
   * Returns the unsubscribe function.
   */
  onOp(listener: (op: JSONOp) => void): () => void;
  /**
   * Calls `listener` when `data` was replaced wholesale (first load, create, delete, a
   * rollback reload). Optional: without it bindings notice such changes at the next op.
   */
  onReset?(listener: () => void): () => void;
  /**
   * Reverts this user's latest group of edits (only theirs), submitted like an edit; its
   * op reaches `onOp` listeners. Optional: with it, the bindings take over the editor's undo
   * keys (Mod-z, Mod-Shift-z, Mod-y) and its undo/redo menu items; without it they leave
   * them to the editor. Returns false when there was nothing to undo.
   */
  undo?(): boolean;
  /** Reapplies what the latest `undo` reverted; false when there was nothing to redo. */
  redo?(): boolean;
}

/** An undo or redo command from the keyboard or a menu. */
export type HistoryCommand = 'undo' | 'redo';

/** A user as shown to others: a display name and a CSS colour. */
export interface PresenceUser {
  name: string;
  color: string;
}

/**
 * One client's presence as the bindings publish it (a Json1Presence from ot-types with a
 * typed `user`): `path` is the string being edited (or [] for "in the document"), `anchor`
 * and `head` are code point offsets in that string.
 */
export interface CursorPresence {
  path: Path;
  anchor?: number;
  head?: number;
  user?: PresenceUser;
}

/** The presence of everyone else, keyed by their presence id. */
export type RemotePresences = ReadonlyMap<string, CursorPresence>;

export interface PresenceChannel {
  /** Publishes this client's presence (null: none). Callers may call it often; sends coalesce. */
  submit(value: CursorPresence | null): void;
  /** Calls `listener` with the whole remote map whenever it changes. Returns unsubscribe. */
  onChange(listener: (remotes: RemotePresences) => void): () => void;
  /** The current remote presences. */
  remotes(): RemotePresences;
}

/** What every binding returns. */
export interface Binding {
  /** Detaches from the document and the element; leaves the element's current text. */
  destroy(): void;
}

export interface BindingOptions {
  /** Publishes this user's caret/selection in the bound string while the editor has focus. */
  presence?: PresenceChannel;
  user?: PresenceUser;
  /** Called after the binding applied a change to the editor (local edit or remote op). */
  onChange?: (origin: ChangeOrigin) => void;
}
