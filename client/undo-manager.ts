/**
 * Undo and redo of this client's own edits to a json1 document (DocHandle's history).
 *
 * Both stacks hold json1 ops that apply to the document as this client has it now, its
 * unacknowledged ops included: the top entry applies to the current data, each entry below
 * to the data after the entries above it were applied. An undo entry is the inverse of a
 * group of local edits (composed while typing continues); a redo entry is the inverse of an
 * undo. Every remote op, as ShareDB applied it (already transformed past our pending ops),
 * is carried through both stacks, top first, so an entry keeps reverting exactly what this
 * client did and leaves everyone else's edits alone. Undo and redo submit their op as
 * ordinary local edits, so the outbox, resends and rebases treat them like typing.
 *
 * Not kept: the history lives in memory only (a restarted client starts empty). DocHandle
 * clears it when the data is replaced wholesale (a reload, a rebuild after a json1 transform
 * defect, create or delete) and when the server refuses one of our edits (the rollback can
 * not be cancelled out of the step holding it for every kind of op).
 *
 * What OT undo cannot tell (there are no identities for characters): text of ours that
 * someone else deleted and then restored with their own undo counts as theirs (our undo
 * leaves it); text two users deleted concurrently comes back twice if both undo.
 */
import type { Doc as JsonValue, JSONOp } from 'ot-json1';
import { tandemJson1 } from '../ot-types/index.js';
import { compose, transform } from './history-ops.js';
import { TandemError, TandemErrorCode } from './protocol.js';

export interface UndoOptions {
  /**
   * Local edits less than this many milliseconds apart (a typing burst) are undone as one
   * step; an undo or redo always ends the current step.
   * @default 500
   */
  groupMs?: number;
  /**
   * The most undo steps kept (the oldest are forgotten first); 0 turns the history off.
   * @default 100
   */
  limit?: number;
}

/** Whether `undo()` and `redo()` have something to do (the payload of the 'history' event). */
export interface UndoState {
  canUndo: boolean;
  canRedo: boolean;
}

/** DocOptions' history part. */
export interface HistoryDocOptions {
  /** Undo/redo of this client's own edits (`doc.undo()`, `doc.redo()`). */
  undo?: UndoOptions;
}

/** DocEvents' history part. */
export type HistoryEvents = {
  /** `canUndo` or `canRedo` changed. */
  history: [state: UndoState];
};

/** Options of `DocHandle.submit`. */
export interface SubmitOptions {
  /**
   * false: `undo()` never reverts this edit (a migration, a field the app adds); the
   * history treats it like someone else's edit.
   * @default true
   */
  undoable?: boolean;
}

/** What the manager needs from the document it keeps the history of. */
export interface UndoHost {
  /** The document as this client has it now. */
  data(): JsonValue | undefined;
  /**
   * Applies `op` locally and queues it for the server, without recording it in the history.
   * Throws (a TandemError) when the op does not fit the data.
   */
  submit(op: JSONOp): void;
  /** Tells the app about a step that was dropped because it could not be applied. */
  report(error: TandemError): void;
  /** Called when `canUndo` or `canRedo` changed. */
  changed(state: UndoState): void;
}

export const DEFAULT_UNDO_GROUP_MS = 500;
export const DEFAULT_UNDO_LIMIT = 100;

const T = tandemJson1;

function isNoop(op: JSONOp): boolean {
  return op == null || (Array.isArray(op) && op.length === 0);
}

/**
 * `op` with each removal's carried value replaced by `true` ("whatever is there"). json1's
 * transform keeps a removal's old value when others edited inside the removed value since,
 * and the SDK's op check refuses a removal naming a value other than the one there; the
 * removal takes those edits with it either way, as removing a value must. Text deletes keep
 * their text: transforms keep it exact, so the check still catches a stale step.
 */
function withBareRemovals(op: JSONOp): JSONOp {
  const walk = (node: unknown): unknown => {
    // An op is nested arrays of path keys and component objects; inserted values sit inside
    // components and are not walked.
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === 'object' && 'r' in node) return { ...node, r: true };
    return node;
  };
  return walk(op) as JSONOp;
}

function message(err: unknown): string {
  return err instanceof Error && err.message ? err.message : String(err);
}

export class UndoManager {
  /** Bottom first; the last entry is the next step to undo. */
  private undoStack: JSONOp[] = [];
  private redoStack: JSONOp[] = [];
  /** True while local edits still join the top undo entry (within `groupMs` of the last). */
  private groupOpen = false;
  private lastEditAt = 0;
  private readonly groupMs: number;
  private readonly limit: number;
  private state: UndoState = { canUndo: false, canRedo: false };

  constructor(
    private readonly host: UndoHost,
    options: UndoOptions = {},
    /** The clock that decides grouping (tests pass their own). */
    private readonly now: () => number = Date.now,
  ) {
    this.groupMs = Math.max(0, options.groupMs ?? DEFAULT_UNDO_GROUP_MS);
    this.limit = Math.max(0, Math.floor(options.limit ?? DEFAULT_UNDO_LIMIT));
  }

  get canUndo(): boolean {
    return this.undoStack.length > 0;
  }

  get canRedo(): boolean {
    return this.redoStack.length > 0;
  }

  /** Number of undo and redo steps held (for tests and diagnostics). */
  get depth(): { undo: number; redo: number } {
    return { undo: this.undoStack.length, redo: this.redoStack.length };
  }

  /**
   * A local edit `op` was applied to `before`: its inverse becomes the next undo step (or
   * joins the open one), and the redo steps are forgotten, as in any editor.
   */
  record(op: JSONOp, before: JsonValue | undefined): void {
    if (this.limit === 0 || isNoop(op)) return;
    let inverse: JSONOp;
    try {
      inverse = T.invertWithDoc(op, before as JsonValue);
    } catch (err) {
      // Not invertible (json1 lacks the removed values): the older steps stay usable if the
      // edit is carried through them like someone else's.
      this.carry(op);
      this.host.report(new TandemError(TandemErrorCode.INVALID_OP, `edit cannot be undone (json1 cannot invert it: ${message(err)})`));
      return;
    }
    this.redoStack = [];
    const at = this.now();
    const top = this.undoStack.length - 1;
    let joined = false;
    if (this.groupOpen && top >= 0 && at - this.lastEditAt < this.groupMs) {
      try {
        // inverse(a then b) = inverse(b) then inverse(a).
        this.undoStack[top] = compose(inverse, this.undoStack[top]!);
        joined = true;
      } catch {
        // json1 could not compose the pair: the edit becomes a step of its own.
      }
    }
    if (!joined) this.push(this.undoStack, inverse);
    this.groupOpen = true;
    this.lastEditAt = at;
    this.notify();
  }

  /**
   * `op` was applied to the data but is not one of our edits (a remote op as applied
   * locally, an edit submitted as not undoable): carries both stacks past it.
   */
  carry(op: JSONOp): void {
    if (isNoop(op)) return;
    this.undoStack = this.carryStack(this.undoStack, op);
    this.redoStack = this.carryStack(this.redoStack, op);
    this.notify();
  }

  /** Reverts the latest step of our edits still in effect; false when there is none. */
  undo(): boolean {
    return this.step(this.undoStack, this.redoStack, 'undo');
  }

  /** Reapplies the step the latest undo reverted; false when there is none. */
  redo(): boolean {
    return this.step(this.redoStack, this.undoStack, 'redo');
  }

  /** Forgets every step (the data was replaced, or the app asked). */
  clear(): void {
    this.undoStack = [];
    this.redoStack = [];
    this.groupOpen = false;
    this.notify();
  }

  private step(from: JSONOp[], to: JSONOp[], kind: 'undo' | 'redo'): boolean {
    this.groupOpen = false;
    try {
      for (;;) {
        const entry = from.pop();
        if (entry === undefined) return false;
        // Everything it touched was removed by others: nothing to revert, try the next.
        if (isNoop(entry)) continue;
        const before = this.host.data();
        let op: JSONOp;
        let inverse: JSONOp;
        try {
          op = withBareRemovals(entry);
          inverse = T.invertWithDoc(op, before as JsonValue);
        } catch (err) {
          this.host.report(
            new TandemError(TandemErrorCode.INVALID_OP, `${kind} step dropped: it no longer fits the document (${message(err)})`),
          );
          return false;
        }
        try {
          this.host.submit(op);
        } catch (err) {
          // The SDK's op checks refused it (a json1 transform defect left it stale): drop it.
          this.host.report(new TandemError(TandemErrorCode.INVALID_OP, `${kind} step dropped: ${message(err)}`));
          return false;
        }
        this.push(to, inverse);
        return true;
      }
    } finally {
      this.notify();
    }
  }

  private push(stack: JSONOp[], op: JSONOp): void {
    stack.push(op);
    // The bottom entry depends on no other: forgetting it leaves the rest valid.
    if (stack.length > this.limit) stack.splice(0, stack.length - this.limit);
  }

  /**
   * Carries a stack past `remote` (an op on the current data). The top entry is transformed
   * against it directly; each entry below against `remote` as carried past the entries above.
   * Entries that became no-ops are dropped; where json1 cannot transform (its known
   * defects), that entry and the ones below are dropped and reported, since they only
   * applied after it.
   *
   * Our steps go 'right' of what others did: text or list items a step puts back go after
   * what others inserted at the same place since, and a step never replaces a value someone
   * else put at its key since (its insert is dropped instead).
   */
  private carryStack(stack: JSONOp[], remote: JSONOp): JSONOp[] {
    const kept: JSONOp[] = [];
    let incoming: JSONOp = remote;
    for (let i = stack.length - 1; i >= 0; i--) {
      const entry = stack[i]!;
      if (isNoop(incoming)) {
        kept.push(entry);
        continue;
      }
      let moved: JSONOp | undefined;
      try {
        moved = transform(entry, incoming, 'right');
        if (i > 0) incoming = transform(incoming, entry, 'left');
      } catch (err) {
        // When only carrying `incoming` past the entry failed, the entry itself is fine but
        // the ones below cannot follow it.
        if (moved !== undefined && !isNoop(moved)) kept.push(moved);
        const lost = moved === undefined ? i + 1 : i;
        if (lost > 0) {
          this.host.report(
            new TandemError(
              TandemErrorCode.TRANSFORM_FAILED,
              `${lost} undo/redo step(s) dropped: json1 could not transform them past a remote edit (${message(err)})`,
            ),
          );
        }
        break;
      }
      if (!isNoop(moved)) kept.push(moved);
    }
    return kept.reverse();
  }

  private notify(): void {
    const next: UndoState = { canUndo: this.canUndo, canRedo: this.canRedo };
    if (next.canUndo === this.state.canUndo && next.canRedo === this.state.canRedo) return;
    this.state = next;
    this.host.changed(next);
  }
}
