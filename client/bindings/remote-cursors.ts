/**
 * Remote carets and selections in CodeMirror 6: a coloured caret with the user's name beside
 * it, and a tinted selection. Positions arrive as UTF-16 offsets of the editor's document
 * (the CodeMirror binding converts them from presence's code points) and are mapped through
 * every change until the next presence update replaces them.
 *
 * The name label sits on the caret's own line, right of the caret (left of it when the line
 * has no room): above the caret it would hide the line above, and on the first line it would
 * be cut off by the editor's top edge.
 */
import { RangeSetBuilder, StateEffect, StateField, type Extension, type Range } from '@codemirror/state';
import { Decoration, EditorView, ViewPlugin, WidgetType, type DecorationSet } from '@codemirror/view';

export interface RemoteCursor {
  /** Presence id (stable per remote client). */
  id: string;
  name: string;
  color: string;
  /** UTF-16 offsets in the editor's document. */
  anchor: number;
  head: number;
}

/** Replaces the whole set of remote cursors shown. */
export const setRemoteCursors = StateEffect.define<readonly RemoteCursor[]>();

const LABEL_CLASS = 'cm-tandem-caret-label';
/** On a label drawn left of its caret, because the line has no room right of it. */
const FLIPPED_CLASS = 'cm-tandem-caret-label-left';
/** The caret bar's width (px), border-left in the theme below. */
const BAR_PX = 2;

class CaretWidget extends WidgetType {
  constructor(readonly cursor: RemoteCursor) {
    super();
  }

  override eq(other: CaretWidget): boolean {
    const a = this.cursor;
    const b = other.cursor;
    return a.id === b.id && a.name === b.name && a.color === b.color;
  }

  toDOM(): HTMLElement {
    const caret = document.createElement('span');
    caret.className = 'cm-tandem-caret';
    caret.style.setProperty('--tandem-color', this.cursor.color);
    caret.dataset.presenceId = this.cursor.id;
    caret.dataset.user = this.cursor.name;
    caret.title = this.cursor.name;
    // The label's text is drawn by CSS from its attribute (::after), so the editor's DOM
    // holds no extra text that could end up in innerText or a copied selection.
    const label = document.createElement('span');
    label.className = LABEL_CLASS;
    label.dataset.user = this.cursor.name;
    label.setAttribute('aria-hidden', 'true');
    caret.append(label);
    return caret;
  }

  override ignoreEvent(): boolean {
    return true;
  }
}

function buildDecorations(cursors: readonly RemoteCursor[], docLength: number): DecorationSet {
  const ranges: Range<Decoration>[] = [];
  for (const c of cursors) {
    const head = Math.max(0, Math.min(c.head, docLength));
    const anchor = Math.max(0, Math.min(c.anchor, docLength));
    const from = Math.min(anchor, head);
    const to = Math.max(anchor, head);
    if (from < to) {
      ranges.push(
        Decoration.mark({
          class: 'cm-tandem-selection',
          attributes: { style: `background-color: ${withAlpha(c.color)}` },
        }).range(from, to),
      );
    }
    // side -1: text typed exactly at a remote caret lands after it, as presence's transform
    // (and the remote client itself) place it.
    ranges.push(Decoration.widget({ widget: new CaretWidget(c), side: -1 }).range(head));
  }
  ranges.sort((a, b) => a.from - b.from || a.value.startSide - b.value.startSide);
  const builder = new RangeSetBuilder<Decoration>();
  for (const r of ranges) builder.add(r.from, r.to, r.value);
  return builder.finish();
}

/** A translucent version of a CSS colour for selections (hex colours; others as given). */
function withAlpha(color: string): string {
  return /^#[0-9a-f]{6}$/i.test(color) ? `${color}40` : color;
}

const remoteCursorField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(decorations, tr) {
    for (const effect of tr.effects) {
      if (effect.is(setRemoteCursors)) return buildDecorations(effect.value, tr.state.doc.length);
    }
    return tr.docChanged ? decorations.map(tr.changes) : decorations;
  },
  provide: (field) => EditorView.decorations.from(field),
});

const theme = EditorView.baseTheme({
  '.cm-tandem-caret': {
    position: 'relative',
    borderLeft: '2px solid var(--tandem-color, #888)',
    marginLeft: '-1px',
    marginRight: '-1px',
    pointerEvents: 'none',
  },
  // Vertically centred on the caret, which spans its line's text: 15 px fits inside a line
  // of any usual editor font, so the label never reaches the line above or below.
  [`.${LABEL_CLASS}`]: {
    position: 'absolute',
    left: '0',
    top: '50%',
    transform: 'translateY(-50%)',
    padding: '0 4px',
    borderRadius: '0 3px 3px 0',
    background: 'var(--tandem-color, #888)',
    color: '#fff',
    fontSize: '11px',
    lineHeight: '15px',
    fontFamily: 'system-ui, sans-serif',
    fontStyle: 'normal',
    fontWeight: '600',
    whiteSpace: 'nowrap',
    userSelect: 'none',
    zIndex: '10',
  },
  [`.${LABEL_CLASS}::after`]: { content: 'attr(data-user)' },
  [`.${LABEL_CLASS}.${FLIPPED_CLASS}`]: {
    left: 'auto',
    right: `${BAR_PX}px`,
    borderRadius: '3px 0 0 3px',
  },
});

/**
 * Puts a label left of its caret when it would run past the editor's visible right edge
 * (a caret near the end of a long or wrapped line); CSS alone cannot know the room left.
 */
const labelPlacement = ViewPlugin.fromClass(
  class {
    constructor(readonly view: EditorView) {
      this.schedule();
    }

    /** Any update may have redrawn a caret (a new one starts right of its caret) or moved one. */
    update(): void {
      this.schedule();
    }

    schedule(): void {
      this.view.requestMeasure({
        key: this,
        read: (view) => {
          const scroller = view.scrollDOM.getBoundingClientRect();
          const right = scroller.left + view.scrollDOM.clientWidth;
          return [...view.contentDOM.querySelectorAll<HTMLElement>(`.${LABEL_CLASS}`)].map((label) => {
            const caret = label.parentElement!.getBoundingClientRect();
            return { label, flip: caret.left + BAR_PX + label.offsetWidth > right };
          });
        },
        write: (placements) => {
          for (const { label, flip } of placements) label.classList.toggle(FLIPPED_CLASS, flip);
        },
      });
    }
  },
);

/** The remote cursor layer (added by the CodeMirror binding; usable on its own). */
export function remoteCursors(): Extension {
  return [remoteCursorField, theme, labelPlacement];
}

/** The remote cursors currently shown, with mapped positions (for tests and tooling). */
export function shownRemoteCursors(view: EditorView): Array<{ id: string; name: string; head: number }> {
  const out: Array<{ id: string; name: string; head: number }> = [];
  const set = view.state.field(remoteCursorField, false);
  if (!set) return out;
  for (let it = set.iter(); it.value !== null; it.next()) {
    const widget = it.value.spec.widget;
    if (widget instanceof CaretWidget) out.push({ id: widget.cursor.id, name: widget.cursor.name, head: it.from });
  }
  return out;
}
