/**
 * Remote carets over a <textarea> or <input>: a coloured bar with the user's name where
 * each other user's caret is in the bound string. Text fields cannot hold decorations, so
 * carets are drawn in an overlay, placed with a hidden "mirror" element that lays out the
 * same text with the same styles to find a character's pixel position.
 */
import type { Path } from 'ot-json1';
import { cpToUtf16 } from './text-ops.js';
import type { Binding, CursorPresence, PresenceChannel, RemotePresences } from './types.js';
import type { TextField } from './textarea.js';

/** Computed styles that decide where text wraps and how wide characters are. */
const MIRRORED = [
  'boxSizing', 'width', 'height', 'borderTopWidth', 'borderRightWidth', 'borderBottomWidth', 'borderLeftWidth',
  'borderStyle', 'paddingTop', 'paddingRight', 'paddingBottom', 'paddingLeft', 'fontStyle', 'fontVariant',
  'fontWeight', 'fontStretch', 'fontSize', 'lineHeight', 'fontFamily', 'textAlign', 'textTransform',
  'textIndent', 'letterSpacing', 'wordSpacing', 'tabSize', 'direction',
] as const;

const samePath = (a: Path, b: Path): boolean => a.length === b.length && a.every((k, i) => k === b[i]);

/** Pixel position (relative to the field's border box, scrolled) of UTF-16 index `index`. */
function caretCoordinates(field: TextField, index: number): { left: number; top: number; height: number } {
  const doc = field.ownerDocument;
  const mirror = doc.createElement('div');
  const style = getComputedStyle(field);
  for (const prop of MIRRORED) mirror.style[prop] = style[prop];
  const isInput = field instanceof HTMLInputElement;
  Object.assign(mirror.style, {
    position: 'absolute',
    visibility: 'hidden',
    top: '0',
    left: '-9999px',
    overflow: 'hidden',
    whiteSpace: isInput ? 'pre' : 'pre-wrap',
    overflowWrap: isInput ? 'normal' : 'break-word',
  });
  mirror.textContent = field.value.slice(0, index);
  const marker = doc.createElement('span');
  // Something to measure even at the end of the text; the rest keeps wrapping identical.
  marker.textContent = field.value.slice(index) || '.';
  mirror.append(marker);
  doc.body.append(mirror);
  const lineHeight = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.2;
  const at = {
    left: marker.offsetLeft - field.scrollLeft,
    top: marker.offsetTop - field.scrollTop,
    height: lineHeight,
  };
  mirror.remove();
  return at;
}

/**
 * Draws other users' carets in `field` for the string at `path`. The overlay is a sibling
 * of the field, absolutely positioned over it; call `refresh()` after moving the field.
 */
export function fieldRemoteCursors(field: TextField, path: Path, presence: PresenceChannel): Binding & { refresh(): void } {
  const doc = field.ownerDocument;
  const overlay = doc.createElement('div');
  overlay.className = 'tandem-field-cursors';
  Object.assign(overlay.style, { position: 'absolute', pointerEvents: 'none', overflow: 'hidden', zIndex: '5' });
  field.insertAdjacentElement('afterend', overlay);
  let remotes: RemotePresences = presence.remotes();
  let scheduled = false;
  let destroyed = false;

  const draw = (): void => {
    scheduled = false;
    if (destroyed) return;
    // Cover the field's padding box. An absolute box is placed in its containing block's
    // padding box: the positioned ancestor's, or the document's when there is none.
    const parent = overlay.offsetParent as HTMLElement | null;
    const positioned = parent !== null && (parent !== doc.body || getComputedStyle(parent).position !== 'static');
    let originLeft = -(doc.defaultView?.scrollX ?? 0);
    let originTop = -(doc.defaultView?.scrollY ?? 0);
    if (positioned) {
      const box = parent.getBoundingClientRect();
      originLeft = box.left + parent.clientLeft - parent.scrollLeft;
      originTop = box.top + parent.clientTop - parent.scrollTop;
    }
    const fieldBox = field.getBoundingClientRect();
    const left = fieldBox.left - originLeft + field.clientLeft;
    const top = fieldBox.top - originTop + field.clientTop;
    Object.assign(overlay.style, { left: `${left}px`, top: `${top}px`, width: `${field.clientWidth}px`, height: `${field.clientHeight}px` });
    const carets: HTMLElement[] = [];
    for (const [id, p] of remotes) {
      if (!samePath(p.path, path) || p.head === undefined) continue;
      const at = caretCoordinates(field, cpToUtf16(field.value, p.head));
      const x = at.left - field.clientLeft;
      const y = at.top - field.clientTop;
      if (x < 0 || y < 0 || x > field.clientWidth || y + at.height > field.clientHeight + 1) continue;
      carets.push(caretElement(doc, id, p, x, y, at.height));
    }
    overlay.replaceChildren(...carets);
  };
  const schedule = (): void => {
    if (scheduled || destroyed) return;
    scheduled = true;
    // After the bindings applied the op that moved the presence (see codemirror.ts).
    queueMicrotask(draw);
  };

  const offPresence = presence.onChange((next) => {
    remotes = next;
    schedule();
  });
  const events = ['input', 'scroll', 'select', 'focus', 'blur'];
  for (const name of events) field.addEventListener(name, schedule);
  const resize = typeof ResizeObserver === 'function' ? new ResizeObserver(schedule) : null;
  resize?.observe(field);
  schedule();

  return {
    refresh: schedule,
    destroy() {
      destroyed = true;
      offPresence();
      for (const name of events) field.removeEventListener(name, schedule);
      resize?.disconnect();
      overlay.remove();
    },
  };
}

function caretElement(doc: Document, id: string, p: CursorPresence, x: number, y: number, height: number): HTMLElement {
  const color = p.user?.color ?? '#888888';
  const caret = doc.createElement('div');
  caret.className = 'tandem-field-caret';
  caret.dataset.presenceId = id;
  caret.dataset.user = p.user?.name ?? 'anonymous';
  caret.dataset.offset = String(p.head);
  Object.assign(caret.style, { position: 'absolute', left: `${x}px`, top: `${y}px`, height: `${height}px`, borderLeft: `2px solid ${color}` });
  const label = doc.createElement('div');
  label.textContent = p.user?.name ?? 'anonymous';
  Object.assign(label.style, {
    position: 'absolute',
    left: '-2px',
    // Below the caret on the first line (the overlay clips above the field), else above.
    [y < 16 ? 'top' : 'bottom']: '100%',
    padding: '0 4px',
    borderRadius: '3px',
    background: color,
    color: '#fff',
    font: '600 11px/15px system-ui, sans-serif',
    whiteSpace: 'nowrap',
  });
  caret.append(label);
  return caret;
}
