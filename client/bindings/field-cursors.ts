/**
 * Remote carets over a <textarea> or <input>: a coloured bar with the user's name where
 * each other user's caret is in the bound string. Text fields cannot hold decorations, so
 * carets are drawn in an overlay, placed with a hidden "mirror" element that lays out the
 * same text with the same styles to find a character's pixel position.
 *
 * The name label sits on the caret's own line, right of the caret (left of it near the
 * field's right edge): above the caret it would hide the line above, and the overlay clips
 * at the field's edges, so in a one-line <input> a label above or below would be cut off.
 */
import type { Path } from 'ot-json1';
import { cpToUtf16 } from './text-ops.js';
import type { Binding, CursorPresence, PresenceChannel, RemotePresences } from './types.js';
import type { TextField } from './textarea.js';

/** Computed styles that decide where text wraps and how wide characters are. */
const MIRRORED = [
  'boxSizing',
  'width',
  'height',
  'borderTopWidth',
  'borderRightWidth',
  'borderBottomWidth',
  'borderLeftWidth',
  'borderStyle',
  'paddingTop',
  'paddingRight',
  'paddingBottom',
  'paddingLeft',
  'fontStyle',
  'fontVariant',
  'fontWeight',
  'fontStretch',
  'fontSize',
  'lineHeight',
  'fontFamily',
  'textAlign',
  'textTransform',
  'textIndent',
  'letterSpacing',
  'wordSpacing',
  'tabSize',
  'direction',
] as const;

/** The caret bar's width (px). */
const BAR_PX = 2;

const samePath = (a: Path, b: Path): boolean => a.length === b.length && a.every((k, i) => k === b[i]);

/**
 * Pixel position (relative to the field's border box, scrolled) of UTF-16 index `index`, and
 * the height of the text there (its line's glyph box, as a native caret spans; not the line
 * height, which would reach into the next line's leading).
 */
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
    // The marker's first box is on the caret's line (the rest may wrap onto later lines).
    height: marker.getClientRects()[0]?.height || lineHeight,
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
    Object.assign(overlay.style, {
      left: `${left}px`,
      top: `${top}px`,
      width: `${field.clientWidth}px`,
      height: `${field.clientHeight}px`,
    });
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
    // Labels are measured in place, so each goes where it fits within the field's width.
    for (const caret of carets) placeLabel(caret, field.clientWidth);
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
  Object.assign(caret.style, {
    position: 'absolute',
    left: `${x}px`,
    top: `${y}px`,
    height: `${height}px`,
    borderLeft: `${BAR_PX}px solid ${color}`,
  });
  const label = doc.createElement('div');
  label.className = 'tandem-field-caret-label';
  label.textContent = p.user?.name ?? 'anonymous';
  Object.assign(label.style, {
    position: 'absolute',
    // Centred on the caret, which spans the line's text: 15 px high, it stays in the line.
    top: '50%',
    transform: 'translateY(-50%)',
    left: '0',
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

/**
 * Right of the caret if the label fits before the field's right edge, else left of it, else
 * (a field narrower than caret and label) against the right edge. `left` is relative to the
 * caret's padding box, which starts right of the bar.
 */
function placeLabel(caret: HTMLElement, fieldWidth: number): void {
  const label = caret.lastElementChild as HTMLElement;
  const x = caret.offsetLeft;
  const width = label.offsetWidth;
  const room = fieldWidth - (x + BAR_PX);
  const left = width <= room ? 0 : width <= x ? -(width + BAR_PX) : Math.max(-(x + BAR_PX), room - width);
  label.style.left = `${left}px`;
}
