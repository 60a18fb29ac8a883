/**
 * CodeMirror 6 binding for one string inside a json1 document.
 *
 * Local transactions become json1 text edits (code points); remote ops become CodeMirror
 * changes, so CodeMirror maps the local selection itself (a caret stays before text inserted
 * exactly at it). Remote users' carets and selections come from presence and are drawn by
 * remote-cursors.ts with their name and colour.
 *
 * Undo: when the document has `undo`/`redo` (the SDK's history of this user's own edits),
 * Mod-z, Mod-Shift-z and Mod-y (at the highest precedence, above any history keymap) and
 * the browser's undo/redo menu items run them. The binding installs no CodeMirror history:
 * CodeMirror's own would also revert remote edits it was shown.
 */
import { Annotation, EditorState, Prec, Transaction, type ChangeSet, type ChangeSpec, type Extension, type Text } from '@codemirror/state';
import { EditorView, ViewPlugin, keymap, type ViewUpdate } from '@codemirror/view';
import type { JSONOp, Path } from 'ot-json1';
import type { TextOp, TextOpComponent } from 'ot-text-unicode';
import type { Binding, BindableDoc, BindingOptions, CursorPresence, HistoryCommand, RemotePresences } from './types.js';
import { remoteCursors, setRemoteCursors, type RemoteCursor } from './remote-cursors.js';
import { advanceCp, cpLength, cpToUtf16, diffToTextOp, stringAt, stringChangeAt, textChanges, textEditOp, utf16ToCp } from './text-ops.js';

/** Marks transactions the binding made from the document, so they are not sent back. */
const fromDocument = Annotation.define<true>();

/** The text op a CodeMirror change set makes to `before`, in code points. */
export function changeSetToTextOp(tr: Transaction): TextOp {
  const op: TextOpComponent[] = [];
  const push = (c: TextOpComponent): void => {
    const last = op[op.length - 1];
    if (typeof c === 'number' && typeof last === 'number') op[op.length - 1] = last + c;
    else op.push(c);
  };
  const before = tr.startState.doc;
  let pos = 0;
  tr.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    if (fromA > pos) push(cpLength(before.sliceString(pos, fromA)));
    if (toA > fromA) push({ d: cpLength(before.sliceString(fromA, toA)) });
    const text = inserted.sliceString(0);
    if (text.length > 0) push(text);
    pos = toA;
  });
  return op;
}

/** CodeMirror changes for a text op on `doc` (code points → UTF-16, one pass). */
function textOpToChanges(doc: Text, op: TextOp): ChangeSpec[] {
  const text = doc.sliceString(0);
  const specs: ChangeSpec[] = [];
  let cp = 0;
  let index = 0;
  for (const change of textChanges(op)) {
    index = advanceCp(text, index, change.fromCp - cp);
    const from = index;
    index = advanceCp(text, index, change.toCp - change.fromCp);
    cp = change.toCp;
    specs.push({ from, to: index, insert: change.insert });
  }
  return specs;
}

export interface CodeMirrorBindingOptions extends BindingOptions {
  /** Draw remote carets and selections (default true when `presence` is given). */
  showRemoteCursors?: boolean;
}

/**
 * The binding as a CodeMirror extension. Create the editor state with the string's current
 * value as `doc` (or use `createCollabEditor`); the plugin re-syncs if they differ.
 */
export function collab(doc: BindableDoc, path: Path, options: CodeMirrorBindingOptions = {}): Extension {
  const plugin = ViewPlugin.define((view) => new CollabPlugin(view, doc, path, options));
  const run =
    (command: HistoryCommand) =>
    (view: EditorView): boolean => {
      const instance = view.plugin(plugin);
      if (!instance) return false;
      instance.runHistory(command);
      // Handled even with nothing to undo: no other history may act on the shared text.
      return true;
    };
  const historyKeys: Extension = doc.undo
    ? [
        Prec.highest(
          keymap.of([
            { key: 'Mod-z', run: run('undo'), preventDefault: true },
            { key: 'Mod-Shift-z', run: run('redo'), preventDefault: true },
            { key: 'Mod-y', run: run('redo'), preventDefault: true },
          ]),
        ),
        Prec.highest(
          EditorView.domEventHandlers({
            // The browser's Edit menu and context menu.
            beforeinput(event, view) {
              const command = event.inputType === 'historyUndo' ? 'undo' : event.inputType === 'historyRedo' ? 'redo' : null;
              if (command === null) return false;
              event.preventDefault();
              return run(command)(view);
            },
          }),
        ),
      ]
    : [];
  return [
    plugin,
    historyKeys,
    // Only "\n" breaks lines, so a "\r" in the shared string stays a character and the
    // editor's text equals the document's string exactly.
    EditorState.lineSeparator.of('\n'),
    options.presence && options.showRemoteCursors !== false ? remoteCursors() : [],
  ];
}

class CollabPlugin {
  private submitting = false;
  /** Set while this editor runs an undo or redo: its op is a local change, and moves the caret. */
  private historyRun: HistoryCommand | null = null;
  private destroyed = false;
  private presenceScheduled = false;
  private readonly offOp: () => void;
  private readonly offReset: (() => void) | undefined;
  private readonly offPresence: (() => void) | undefined;

  constructor(
    private readonly view: EditorView,
    private readonly doc: BindableDoc,
    private readonly path: Path,
    private readonly options: CodeMirrorBindingOptions,
  ) {
    this.offOp = doc.onOp((op) => this.onOp(op));
    this.offReset = doc.onReset?.(() => this.resync());
    this.offPresence = options.presence?.onChange(() => this.schedulePresence());
    // A plugin may not dispatch while the view is being built.
    queueMicrotask(() => {
      this.resync();
      this.schedulePresence();
    });
  }

  update(update: ViewUpdate): void {
    if (this.destroyed) return;
    let local = false;
    for (const tr of update.transactions) {
      if (!tr.docChanged || tr.annotation(fromDocument)) continue;
      if (stringAt(this.doc.data, this.path) === null) {
        // Nothing to edit (the string is gone): undo the edit once the update is over.
        queueMicrotask(() => this.resync());
        continue;
      }
      this.submitOwn(textEditOp(this.path, changeSetToTextOp(tr)));
      local = true;
    }
    if (local || update.selectionSet || update.focusChanged) this.publishPresence(update.state, update.focusChanged);
    if (local) this.options.onChange?.('local');
  }

  destroy(): void {
    this.destroyed = true;
    this.offOp();
    this.offReset?.();
    this.offPresence?.();
  }

  private submitOwn(op: JSONOp): void {
    if (op === null) return;
    this.submitting = true;
    try {
      this.doc.submit(op);
    } finally {
      this.submitting = false;
    }
  }

  /** Runs the document's undo or redo; its op arrives through onOp like any other. */
  runHistory(command: HistoryCommand): void {
    this.historyRun = command;
    try {
      if (command === 'undo') this.doc.undo?.();
      else this.doc.redo?.();
    } finally {
      this.historyRun = null;
    }
  }

  private onOp(op: JSONOp): void {
    if (this.submitting || this.destroyed) return;
    const change = stringChangeAt(op, this.path);
    if (change.kind === 'none') return;
    const own = this.historyRun;
    if (change.kind === 'text') {
      const changes = this.view.state.changes(textOpToChanges(this.view.state.doc, change.op));
      // Like a native undo, ours puts the caret where the text changed (its update then
      // publishes the caret).
      const caret = own ? lastChangeEnd(changes) : null;
      this.view.dispatch({
        changes,
        ...(caret !== null ? { selection: { anchor: caret }, scrollIntoView: true } : {}),
        annotations: [
          fromDocument.of(true),
          Transaction.addToHistory.of(false),
          own ? Transaction.userEvent.of(own) : Transaction.remote.of(true),
        ],
      });
    }
    // Safety net (and the path for replaced/moved strings): the editor must equal the string.
    this.resync();
    this.options.onChange?.(own ? 'local' : 'remote');
  }

  /** Makes the editor equal the document's string with the smallest change. */
  private resync(): void {
    if (this.destroyed) return;
    const want = stringAt(this.doc.data, this.path) ?? '';
    const have = this.view.state.doc.sliceString(0);
    if (want === have) return;
    // The smallest change keeps most of the selection in place.
    const caret = this.view.state.selection.main.head;
    this.view.dispatch({
      changes: textOpToChanges(this.view.state.doc, diffToTextOp(have, want, Math.min(caret, want.length))),
      annotations: [fromDocument.of(true), Transaction.addToHistory.of(false), Transaction.remote.of(true)],
    });
  }

  /** Our caret while focused; "in the document" once, on blur (see the textarea binding). */
  private publishPresence(state: EditorState, focusChanged: boolean): void {
    const presence = this.options.presence;
    if (!presence) return;
    const user = this.options.user ? { user: this.options.user } : {};
    if (!this.view.hasFocus) {
      // CodeMirror reports a blur some milliseconds late: when the focus went to another
      // field, that field's binding has already published its caret, which must stand.
      const active = this.view.dom.ownerDocument.activeElement;
      const movedToAnotherField = active !== null && active !== active.ownerDocument.body && !this.view.dom.contains(active);
      if (focusChanged && !movedToAnotherField) presence.submit({ path: [], ...user });
      return;
    }
    const text = state.doc.sliceString(0);
    const { anchor, head } = state.selection.main;
    presence.submit({ path: this.path, anchor: utf16ToCp(text, anchor), head: utf16ToCp(text, head), ...user });
  }

  /**
   * ShareDB reports presence from inside its op handling, possibly before this binding has
   * applied that op to the editor; drawing a microtask later uses a consistent document.
   */
  private schedulePresence(): void {
    if (this.presenceScheduled || this.destroyed) return;
    this.presenceScheduled = true;
    queueMicrotask(() => {
      this.presenceScheduled = false;
      if (this.destroyed || !this.options.presence || this.options.showRemoteCursors === false) return;
      this.drawPresence(this.options.presence.remotes());
    });
  }

  private drawPresence(remotes: RemotePresences): void {
    const text = this.view.state.doc.sliceString(0);
    const cursors: RemoteCursor[] = [];
    for (const [id, p] of remotes) {
      if (!onPath(p, this.path) || p.head === undefined) continue;
      const head = cpToUtf16(text, p.head);
      const anchor = cpToUtf16(text, p.anchor ?? p.head);
      cursors.push({ id, name: p.user?.name ?? 'anonymous', color: p.user?.color ?? '#888888', anchor, head });
    }
    this.view.dispatch({ effects: setRemoteCursors.of(cursors) });
  }
}

/** Where the last change of `changes` ends in the new document (null: no change). */
function lastChangeEnd(changes: ChangeSet): number | null {
  let end: number | null = null;
  changes.iterChangedRanges((_fromA, _toA, _fromB, toB) => {
    end = toB;
  });
  return end;
}

function onPath(p: CursorPresence, path: Path): boolean {
  return p.path.length === path.length && p.path.every((k, i) => k === path[i]);
}

/** Creates an editor bound to the string at `path`, mounted in `parent`. */
export function createCollabEditor(
  parent: Element,
  doc: BindableDoc,
  path: Path,
  options: CodeMirrorBindingOptions & { extensions?: Extension } = {},
): Binding & { view: EditorView } {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: stringAt(doc.data, path) ?? '',
      extensions: [options.extensions ?? [], collab(doc, path, options)],
    }),
  });
  return { view, destroy: () => view.destroy() };
}
