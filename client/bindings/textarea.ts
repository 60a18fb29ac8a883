/**
 * Binds a <textarea> or <input> to one string inside a json1 document. No dependencies.
 *
 * - Local input becomes json1 text edits (the smallest insert/delete, in code points).
 * - Remote ops are applied to the field without moving the caret or selection off their
 *   characters: offsets are mapped through the op's text edit, not re-guessed from a diff.
 * - While an IME composition is open the field is left alone (writing `value` would cancel
 *   the composition); remote ops queue up and are merged when it ends.
 * - After every change the field's value equals the document's string.
 * - When the document has `undo`/`redo` (the SDK's history of this user's own edits), the
 *   undo keys (Ctrl/Cmd+Z, Ctrl/Cmd+Shift+Z, Ctrl/Cmd+Y) and the browser's undo/redo menu
 *   items run them instead of the field's native undo, which knows nothing of other users.
 */
import type { JSONOp, Path } from 'ot-json1';
import type { TextOp } from 'ot-text-unicode';
import { setOp, tandemJson1 } from '../../ot-types/index.js';
import type { Binding, BindableDoc, BindingOptions, CursorPresence, HistoryCommand } from './types.js';
import { cpLength, cpToUtf16, diffToTextOp, mapOffset, stringAt, stringChangeAt, textEditOp, utf16ToCp, valueAt } from './text-ops.js';

export type TextField = HTMLTextAreaElement | HTMLInputElement;

interface Selection {
  /** Code point offsets in the string the field currently shows. */
  start: number;
  end: number;
  backward: boolean;
}

export function bindTextField(field: TextField, doc: BindableDoc, path: Path, options: BindingOptions = {}): Binding {
  /**
   * The string the field showed after the last sync: the base that local DOM changes are
   * diffed against. Equal to the document's string except while remote ops are queued
   * (during a composition) — then the document is ahead of it by exactly `queued`.
   */
  let shadow = stringAt(doc.data, path) ?? '';
  /** Remote ops the document applied but the field does not show yet (composition open). */
  let queued: JSONOp[] = [];
  let composing = false;
  /**
   * Set when the document was replaced wholesale during a composition: the shadow no
   * longer describes what the field showed, so the field's text cannot be diffed into an
   * edit and is replaced by the document's when the composition ends.
   */
  let stale = false;
  /** True while our own submit runs, so its 'op' echo is not taken for a remote op. */
  let submitting = false;
  /**
   * Set while this field runs an undo or redo: its op is this user's change (reported as
   * 'local'), and `caret` (code points) is where it ends in this field, for the caret.
   */
  let historyRun: { caret: number | null } | null = null;
  let destroyed = false;

  field.value = shadow;

  const readSelection = (value: string): Selection => ({
    start: utf16ToCp(value, field.selectionStart ?? value.length),
    end: utf16ToCp(value, field.selectionEnd ?? value.length),
    backward: field.selectionDirection === 'backward',
  });

  /**
   * Publishes our caret while the field has focus. Unfocused, it says only "in the document"
   * and only on blur: the presence is shared by every binding of the page, and an unfocused
   * field (whose selection changes when remote text arrives) must not hide the caret of the
   * editor that has the focus.
   */
  const publishPresence = (event?: Event): void => {
    if (!options.presence || destroyed) return;
    const focused = field.ownerDocument.activeElement === field;
    const base: CursorPresence = { path: focused ? path : [], ...(options.user ? { user: options.user } : {}) };
    if (!focused) {
      if (event?.type === 'blur') options.presence.submit(base);
      return;
    }
    const sel = readSelection(field.value);
    options.presence.submit({ ...base, anchor: sel.backward ? sel.end : sel.start, head: sel.backward ? sel.start : sel.end });
  };

  /**
   * Brings field and document together. A local edit (field ≠ shadow) is diffed against the
   * shadow, transformed past the queued remote ops and submitted; then the field shows the
   * document's string with the selection mapped through the remote ops.
   */
  const sync = (): void => {
    if (destroyed || composing) return;
    const shown = field.value;
    const sel = readSelection(shown);
    let local: JSONOp = stale ? null : textEditOp(path, diffToTextOp(shadow, shown, field.selectionEnd ?? shown.length));
    stale = false;
    // Remote ops re-expressed to apply after the local edit (selection offsets are there).
    const remoteAfterLocal: JSONOp[] = [];
    for (const remote of queued) {
      remoteAfterLocal.push(local === null ? remote : tandemJson1.transform(remote, local, 'right'));
      if (local !== null) local = tandemJson1.transform(local, remote, 'left');
    }
    queued = [];
    if (local !== null) {
      if (stringAt(doc.data, path) === null) {
        // The string is missing (or not a string): the first edit sets it whole, if it can.
        const create = setStringOp(doc.data, path, shown);
        local = null;
        if (create !== null) submitOwn(create);
      } else submitOwn(local);
    }
    let { start, end } = sel;
    let caretLost = false;
    let remoteTouched = false;
    for (const remote of remoteAfterLocal) {
      const change = stringChangeAt(remote, path);
      if (change.kind !== 'none') remoteTouched = true;
      if (change.kind === 'text' && start === end) {
        // A caret stays before text inserted at it: after the character its user typed.
        start = end = mapOffset(change.op, start, -1);
      } else if (change.kind === 'text') {
        // A selection keeps its characters and does not swallow text inserted at its edges.
        start = mapOffset(change.op, start, 1);
        end = Math.max(start, mapOffset(change.op, end, -1));
      } else if (change.kind === 'other') caretLost = true;
    }
    const next = stringAt(doc.data, path) ?? '';
    shadow = next;
    if (field.value !== next) {
      field.value = next;
      if (caretLost) start = end = Math.min(start, utf16ToCp(next, next.length));
      // Writing `value` put the caret at the end; put the mapped selection back (this does
      // not focus an unfocused field).
      field.setSelectionRange(cpToUtf16(next, start), cpToUtf16(next, Math.max(start, end)), sel.backward ? 'backward' : 'forward');
    }
    // Only our own edits move our caret for others: they move it through remote ops themselves.
    if (local !== null) publishPresence();
    if (local !== null) options.onChange?.('local');
    // Ops on other parts of the document are no change to this field.
    if (remoteTouched || field.value !== shown) options.onChange?.(historyRun ? 'local' : 'remote');
  };

  const submitOwn = (op: JSONOp): void => {
    submitting = true;
    try {
      doc.submit(op);
    } finally {
      submitting = false;
    }
  };

  const onOp = (op: JSONOp): void => {
    if (submitting || destroyed) return;
    if (historyRun) {
      const change = stringChangeAt(op, path);
      if (change.kind === 'text') historyRun.caret = caretAfter(change.op) ?? historyRun.caret;
    }
    queued.push(op);
    sync();
  };

  /** Runs the document's undo or redo; its op arrives through onOp like any other. */
  const runHistory = (command: HistoryCommand): void => {
    // Typing not yet synced belongs before the step (normally input events leave none).
    sync();
    const run: { caret: number | null } = { caret: null };
    historyRun = run;
    try {
      if (command === 'undo') doc.undo?.();
      else doc.redo?.();
    } finally {
      historyRun = null;
      const { caret } = run;
      if (caret !== null && !destroyed && field.ownerDocument.activeElement === field) {
        // Like a native undo: the caret goes to where the text changed.
        const at = cpToUtf16(field.value, caret);
        field.setSelectionRange(at, at);
        publishPresence();
      }
    }
  };

  const onKeyDown = (event: Event): void => {
    const command = historyKey(event as KeyboardEvent);
    if (command === null || !doc.undo || composing) return;
    event.preventDefault();
    runHistory(command);
  };
  /** The browser's Edit menu and context menu send undo/redo as `beforeinput`. */
  const onBeforeInput = (event: Event): void => {
    const type = (event as InputEvent).inputType;
    const command = type === 'historyUndo' ? 'undo' : type === 'historyRedo' ? 'redo' : null;
    if (command === null || !doc.undo || composing) return;
    event.preventDefault();
    runHistory(command);
  };

  const onReset = (): void => {
    if (destroyed) return;
    // Everything we knew is void: show the document as it is now, caret clamped.
    queued = [];
    const next = stringAt(doc.data, path) ?? '';
    const sel = readSelection(field.value);
    shadow = next;
    if (composing) stale = true;
    else if (field.value !== next) {
      field.value = next;
      const max = utf16ToCp(next, next.length);
      field.setSelectionRange(cpToUtf16(next, Math.min(sel.start, max)), cpToUtf16(next, Math.min(sel.end, max)));
      options.onChange?.('remote');
    }
  };

  const onInput = (event: Event): void => {
    // Chrome fires `input` inside a composition too; the text is not final until it ends.
    if ((event as InputEvent).isComposing) return;
    sync();
  };
  const onCompositionStart = (): void => {
    composing = true;
  };
  const onCompositionEnd = (): void => {
    composing = false;
    sync();
  };

  const listeners: Array<[string, EventListener]> = [
    ['keydown', onKeyDown],
    ['beforeinput', onBeforeInput],
    ['input', onInput],
    ['compositionstart', onCompositionStart],
    ['compositionend', onCompositionEnd],
    ['focus', publishPresence],
    ['blur', publishPresence],
    ['select', publishPresence],
    ['keyup', publishPresence],
    ['mouseup', publishPresence],
  ];
  for (const [name, fn] of listeners) field.addEventListener(name, fn);
  const offOp = doc.onOp(onOp);
  const offReset = doc.onReset?.(onReset);

  return {
    destroy() {
      if (destroyed) return;
      destroyed = true;
      for (const [name, fn] of listeners) field.removeEventListener(name, fn);
      offOp();
      offReset?.();
    },
  };
}

/** The undo/redo command a key press asks for: Mod-z, Mod-Shift-z or Mod-y (Mod: Ctrl or Cmd). */
function historyKey(event: KeyboardEvent): HistoryCommand | null {
  if (!(event.ctrlKey || event.metaKey) || event.altKey || event.isComposing) return null;
  // Layouts without Latin letters report another `key`; `code` names the physical key.
  const key = /^[a-z]$/i.test(event.key) ? event.key.toLowerCase() : event.code === 'KeyZ' ? 'z' : event.code === 'KeyY' ? 'y' : '';
  if (key === 'z') return event.shiftKey ? 'redo' : 'undo';
  if (key === 'y' && !event.shiftKey) return 'redo';
  return null;
}

/** Where a text op's last change ends, in code points of the string after it (null: none). */
function caretAfter(op: TextOp): number | null {
  let pos = 0;
  let caret: number | null = null;
  for (const c of op) {
    if (typeof c === 'number') pos += c;
    else if (typeof c === 'string') caret = pos += cpLength(c);
    else caret = pos;
  }
  return caret;
}

/** An op that puts `text` at `path` (replacing a non-string), or null when its parent is missing. */
function setStringOp(data: unknown, path: Path, text: string): JSONOp {
  if (path.length === 0) return null;
  const parent = valueAt(data, path.slice(0, -1));
  if (parent === null || typeof parent !== 'object') return null;
  return setOp(path, text, valueAt(data, path) !== undefined);
}
