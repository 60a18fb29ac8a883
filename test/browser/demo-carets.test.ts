/**
 * Remote caret labels in the demo, two users in Chromium: a label stays on its caret's line
 * (it does not cover the line above), is not clipped by the title <input> or the editors'
 * edges, and moves left of its caret near the right edge. Geometry is read from the page;
 * screenshots of both users are written to test-output/ for people to look at.
 */
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { waitFor } from '../helpers/wait.js';
import { useBrowserFixture } from './browser-fixture.js';
import { outputPath } from './helpers-browser.js';
import { select, waitConverged, type DemoWindow } from './helpers-page.js';

interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

interface LabelGeometry {
  label: Box;
  /** The caret bar. */
  caret: Box;
  /** What the label must stay inside: the field's padding box, or the editor's visible area. */
  bounds: Box;
  /** The caret's line, and the one above it (null on the first line or in an <input>). */
  line: Box | null;
  above: Box | null;
  /** Whether the label is what the page shows at its centre (nothing covers it). */
  onTop: boolean;
  /** The label's text as drawn (CodeMirror draws it from an attribute). */
  text: string;
}

/** Half a pixel for sub-pixel rounding of borders and centring. */
const EPS = 0.5;

/** Bob's caret label in a text field of Alice's page, once his caret shows at `offset`. */
async function fieldLabel(page: Page, field: 'title' | 'notes', user: string, offset: number): Promise<LabelGeometry> {
  await page.waitForSelector(`.tandem-field-caret[data-user="${user}"][data-offset="${offset}"]`, { timeout: 5_000 });
  return page.evaluate(
    ([f, name]) => {
      const box = (r: DOMRect) => ({ left: r.left, top: r.top, right: r.right, bottom: r.bottom });
      // Labels ignore the pointer (pointer-events: none), which hit testing skips: let it see them.
      const hitTest = (label: HTMLElement, r: DOMRect) => {
        label.style.pointerEvents = 'auto';
        const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
        label.style.pointerEvents = '';
        return hit;
      };
      const el = (window as unknown as DemoWindow).tandemDemo!.fields[f];
      const caret = document.querySelector<HTMLElement>(`.tandem-field-caret[data-user="${name}"]`)!;
      const label = caret.querySelector<HTMLElement>('.tandem-field-caret-label')!;
      const r = el.getBoundingClientRect();
      const left = r.left + el.clientLeft;
      const top = r.top + el.clientTop;
      const bounds = { left, top, right: left + el.clientWidth, bottom: top + el.clientHeight };
      let line: Box | null = null;
      let above: Box | null = null;
      if (el instanceof HTMLTextAreaElement) {
        // Lines of the notes are short (no soft wraps): line k is k line-heights down.
        const style = getComputedStyle(el);
        const lineHeight = parseFloat(style.lineHeight);
        const k = el.value.slice(0, Number(caret.dataset.offset)).split('\n').length - 1;
        const lineTop = top + parseFloat(style.paddingTop) - el.scrollTop + k * lineHeight;
        line = { left, right: bounds.right, top: lineTop, bottom: lineTop + lineHeight };
        if (k > 0) above = { left, right: bounds.right, top: lineTop - lineHeight, bottom: lineTop };
      }
      const l = label.getBoundingClientRect();
      const hit = hitTest(label, l);
      return {
        label: box(l),
        caret: box(caret.getBoundingClientRect()),
        bounds,
        line,
        above,
        onTop: hit === label,
        text: label.textContent ?? '',
      };
    },
    [field, user] as const,
  );
}

/** Bob's caret label in Alice's CodeMirror, once his caret shows at `pos` and is laid out. */
async function codeLabel(page: Page, user: string, pos: number): Promise<LabelGeometry> {
  await page.waitForFunction(
    ([name, at]) => {
      const view = (window as unknown as DemoWindow).tandemDemo!.code;
      const caret = view.dom.querySelector<HTMLElement>(`.cm-tandem-caret[data-user="${name}"]`);
      return caret !== null && view.posAtDOM(caret) === at;
    },
    [user, pos] as const,
    { timeout: 5_000 },
  );
  // The label's side is set in CodeMirror's next measure cycle (an animation frame).
  await page.evaluate(() => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve()))));
  return page.evaluate((name) => {
    const box = (r: DOMRect) => ({ left: r.left, top: r.top, right: r.right, bottom: r.bottom });
    const hitTest = (label: HTMLElement, r: DOMRect) => {
      label.style.pointerEvents = 'auto';
      const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
      label.style.pointerEvents = '';
      return hit;
    };
    const view = (window as unknown as DemoWindow).tandemDemo!.code;
    const caret = view.dom.querySelector<HTMLElement>(`.cm-tandem-caret[data-user="${name}"]`)!;
    const label = caret.querySelector<HTMLElement>('.cm-tandem-caret-label')!;
    const lineEl = caret.closest('.cm-line')!;
    const aboveEl = lineEl.previousElementSibling?.classList.contains('cm-line') ? lineEl.previousElementSibling : null;
    const s = view.scrollDOM.getBoundingClientRect();
    const bounds = { left: s.left, top: s.top, right: s.left + view.scrollDOM.clientWidth, bottom: s.top + view.scrollDOM.clientHeight };
    const l = label.getBoundingClientRect();
    const hit = hitTest(label, l);
    return {
      label: box(l),
      caret: box(caret.getBoundingClientRect()),
      bounds,
      line: box(lineEl.getBoundingClientRect()),
      above: aboveEl ? box(aboveEl.getBoundingClientRect()) : null,
      onTop: hit === label,
      text: getComputedStyle(label, '::after').content.replace(/^"|"$/g, ''),
    };
  }, user);
}

/**
 * Takes `page`'s user out of the code editor and waits until `other` no longer shows their
 * caret there. CodeMirror reports a blur 10 ms late, and the CodeMirror binding then
 * publishes "in the document": a caret placed in a text field right away would be replaced.
 */
async function leaveCode(page: Page, other: Page, name: string): Promise<void> {
  await page.evaluate(() => (window as unknown as DemoWindow).tandemDemo!.code.contentDOM.blur());
  await other.waitForFunction((n) => !document.querySelector(`.cm-tandem-caret[data-user="${n}"]`), name, { timeout: 5_000 });
}

const fmt = (g: LabelGeometry): string => JSON.stringify(g, (_, v: unknown) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v));

/** The label is whole and visible inside its field or editor, and on its caret's line only. */
function assertPlaced(g: LabelGeometry, what: string, name: string): void {
  assert.equal(g.text, name, `${what}: the label shows the name`);
  assert.ok(g.label.right - g.label.left > 10, `${what}: the label has a width: ${fmt(g)}`);
  const b = g.bounds;
  assert.ok(
    g.label.left >= b.left - EPS && g.label.right <= b.right + EPS && g.label.top >= b.top - EPS && g.label.bottom <= b.bottom + EPS,
    `${what}: the label is not clipped (inside the field's box): ${fmt(g)}`,
  );
  assert.ok(g.onTop, `${what}: the label is visible, not covered: ${fmt(g)}`);
  if (g.above) assert.ok(g.label.top >= g.above.bottom - EPS, `${what}: the label does not cover the line above: ${fmt(g)}`);
  if (g.line)
    assert.ok(
      g.label.top >= g.line.top - EPS && g.label.bottom <= g.line.bottom + EPS,
      `${what}: the label stays on its caret's line: ${fmt(g)}`,
    );
  // Beside the caret, right of it or (near the right edge) left of it, at its height.
  const beside = g.label.left >= g.caret.right - EPS - 1 || g.label.right <= g.caret.left + EPS + 1;
  assert.ok(beside, `${what}: the label is beside the caret, not over it: ${fmt(g)}`);
  assert.ok(
    g.label.top >= g.caret.top - EPS && g.label.bottom <= g.caret.bottom + EPS,
    `${what}: the label is within the caret's height: ${fmt(g)}`,
  );
}

describe('browser: remote caret labels in the demo, two users in Chromium', function () {
  this.timeout(60_000);
  const fx = useBrowserFixture('carets');

  it('keep labels on their caret line, inside the title <input>, the notes and the code, and flip left at the right edge', async () => {
    const [alice, bob] = await Promise.all([fx.openDemo('Alice'), fx.openDemo('Bob')]);
    const initial = await waitConverged([alice.page, bob.page], fx.server, fx.docId);

    // Notes: Bob on the second line (a line above it) and on the first (the field's top edge).
    const second = initial.notes.indexOf('Type here') + 'Type here'.length;
    await select(bob.page, 'notes', second);
    assertPlaced(await fieldLabel(alice.page, 'notes', 'Bob', second), 'notes, line 2', 'Bob');
    await select(bob.page, 'notes', 8);
    assertPlaced(await fieldLabel(alice.page, 'notes', 'Bob', 8), 'notes, line 1', 'Bob');

    // Title: a one-line <input>, where a label above or below the caret was cut off.
    await select(bob.page, 'title', 7);
    const title = await fieldLabel(alice.page, 'title', 'Bob', 7);
    assertPlaced(title, 'title', 'Bob');
    assert.ok(title.label.left >= title.caret.right - EPS - 1, `title: the label is right of the caret where there is room: ${fmt(title)}`);

    // Near the right edge the label goes left of the caret. Bob makes the title long; Alice
    // (in the notes) sees it from its start.
    await select(alice.page, 'notes', 'end');
    await select(bob.page, 'title', 'end');
    await bob.page.keyboard.insertText(' — with a subtitle long enough to run past the right edge of the title field, whatever the fonts');
    const longTitle = (await waitConverged([alice.page, bob.page], fx.server, fx.docId)).title;
    const titleEdge = await alice.page.evaluate(() => {
      // The offset whose caret is about 12 px before the field's right edge: closer than any
      // label is wide (a label of ~32 px fitted 30 px before it with Chromium 156's fonts).
      const input = (window as unknown as DemoWindow).tandemDemo!.fields.title;
      const style = getComputedStyle(input);
      const ctx = document.createElement('canvas').getContext('2d')!;
      ctx.font = style.font;
      const limit = input.clientWidth - 12;
      let offset = 0;
      while (
        offset < input.value.length &&
        parseFloat(style.paddingLeft) + ctx.measureText(input.value.slice(0, offset + 1)).width - input.scrollLeft < limit
      )
        offset++;
      return offset;
    });
    assert.ok(titleEdge < longTitle.length, `${titleEdge} of ${longTitle.length}`);
    await select(bob.page, 'title', titleEdge);
    const edge = await fieldLabel(alice.page, 'title', 'Bob', titleEdge);
    assertPlaced(edge, 'title, near the right edge', 'Bob');
    assert.ok(edge.label.right <= edge.caret.left + EPS, `title: left of the caret at the right edge: ${fmt(edge)}`);

    // Code: line 2 under line 1, line 1 at the editor's top, and the end of a wrapped row.
    const codeLine2 = initial.code.indexOf('return');
    await select(bob.page, 'code', codeLine2);
    assertPlaced(await codeLabel(alice.page, 'Bob', codeLine2), 'code, line 2', 'Bob');
    await select(bob.page, 'code', 3);
    assertPlaced(await codeLabel(alice.page, 'Bob', 3), 'code, line 1', 'Bob');
    await select(bob.page, 'code', 'end');
    // No spaces: the row breaks at the character that reaches the right edge.
    await bob.page.keyboard.insertText('//' + 'x'.repeat(150));
    const longCode = (await waitConverged([alice.page, bob.page], fx.server, fx.docId)).code;
    const codeEdge = await alice.page.evaluate(() => {
      // The last position on the first row of the wrapped last line.
      const view = (window as unknown as DemoWindow).tandemDemo!.code;
      const line = view.state.doc.lineAt(view.state.doc.length);
      const rowTop = view.coordsAtPos(line.from)!.top;
      let pos = line.from;
      while (pos < line.to && view.coordsAtPos(pos + 1, -1)!.top === rowTop) pos++;
      return pos;
    });
    assert.ok(codeEdge < longCode.length, `${codeEdge} of ${longCode.length}: the line wraps`);
    await select(bob.page, 'code', codeEdge);
    const wrapped = await codeLabel(alice.page, 'Bob', codeEdge);
    assertPlaced(wrapped, 'code, end of a wrapped row', 'Bob');
    assert.ok(wrapped.label.right <= wrapped.caret.left + EPS, `code: left of the caret at the right edge: ${fmt(wrapped)}`);

    // The screenshots: Alice sees Bob on the second line of the notes; Bob sees Alice in the title.
    await leaveCode(bob.page, alice.page, 'Bob');
    await select(bob.page, 'notes', second);
    await select(alice.page, 'title', 7);
    assertPlaced(await fieldLabel(alice.page, 'notes', 'Bob', second), 'notes, line 2 (screenshot)', 'Bob');
    assertPlaced(await fieldLabel(bob.page, 'title', 'Alice', 7), 'title (screenshot)', 'Alice');
    await alice.page.screenshot({ path: outputPath('demo-carets-alice.png') });
    await bob.page.screenshot({ path: outputPath('demo-carets-bob.png') });
  });

  it('a click from the code editor straight into the notes shows the caret in the notes, and it stays there', async () => {
    const [alice, bob] = await Promise.all([fx.openDemo('Alice'), fx.openDemo('Bob')]);
    await select(bob.page, 'code', 0);
    await alice.page.waitForFunction(() => document.querySelector('.cm-tandem-caret[data-user="Bob"]') !== null, undefined, {
      timeout: 5_000,
    });
    // A real click, no pause: CodeMirror's late blur must not replace the caret the notes
    // just published.
    await bob.page.click('#notes');
    const inNotes = () => alice.page.evaluate(() => document.querySelector('.tandem-field-caret[data-user="Bob"]') !== null);
    await waitFor(inNotes, { what: "Bob's caret in Alice's notes" });
    const until = Date.now() + 500;
    while (Date.now() < until) assert.ok(await inNotes(), "Bob's caret left the notes (replaced by the late blur)");
  });
});
