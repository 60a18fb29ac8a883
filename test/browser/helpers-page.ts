/**
 * Helpers that drive and inspect the demo page (demo/demo.ts exposes `window.tandemDemo`).
 * Functions passed to page.evaluate run in the browser: they may use only their arguments
 * and the page's globals.
 */
import type { Page } from 'playwright-core';
import type { EditorView } from '@codemirror/view';
import type { DocHandle, TandemClient } from '../../client/index.js';
import type { ChangeOrigin } from '../../client/bindings/types.js';
import { fetchDoc } from '../helpers/clients.js';
import type { TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

export interface DemoData {
  title: string;
  notes: string;
  code: string;
}
export type Field = keyof DemoData;

/** What `window.tandemDemo` holds (see demo/demo.ts). */
export interface DemoApi {
  client: TandemClient;
  handle: DocHandle<DemoData>;
  events: EventTarget;
  fields: { title: HTMLInputElement; notes: HTMLTextAreaElement };
  code: EditorView;
  user: { name: string; color: string };
}

/**
 * The caret checker's record in the page. `expected[field]` is the code point right before
 * the caret after this user's last typed character (null after other keys); after every
 * remote change the checker compares it with what is before the caret now.
 */
export interface CaretLog {
  expected: Partial<Record<Field, string | null>>;
  intended: { field: Field; char: string | null } | null;
  checks: number;
  violations: string[];
}

export type DemoWindow = Window & { tandemDemo?: DemoApi; __caret?: CaretLog };

export function demoUrl(base: string, server: string, doc: string, name: string): string {
  const q = new URLSearchParams({ server, doc, name });
  return `${base}/?${q}`;
}

/** Opens the demo and waits until the document is loaded and the editors are bound. */
export async function openDemo(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await waitReady(page);
}

export async function waitReady(page: Page): Promise<void> {
  await page.waitForFunction(() => document.getElementById('app')?.dataset.ready === 'true', null, { timeout: 15_000 });
}

/**
 * Installs the caret checker. What a keystroke should leave before the caret is read from
 * its `beforeinput` event (a typed character, or nothing for Enter/Backspace); the bindings'
 * `onChange` events, which fire right after a binding applied a change, trigger the checks:
 * a local change must leave the typed character before the caret, and every remote change
 * must leave it there.
 */
export async function installCaretChecker(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as DemoWindow;
    const demo = w.tandemDemo!;
    const log: CaretLog = { expected: {}, intended: null, checks: 0, violations: [] };
    w.__caret = log;
    const before = (field: Field): { char: string; caret: number; around: string } => {
      let text: string;
      let caret: number;
      if (field === 'code') {
        text = demo.code.state.doc.toString();
        caret = demo.code.state.selection.main.head;
      } else {
        text = demo.fields[field].value;
        caret = demo.fields[field].selectionEnd ?? 0;
      }
      // The last code point before the caret (an emoji is two UTF-16 units).
      const chars = Array.from(text.slice(Math.max(0, caret - 2), caret));
      return { char: chars[chars.length - 1] ?? '', caret, around: JSON.stringify(text.slice(Math.max(0, caret - 8), caret + 8)) };
    };
    window.addEventListener(
      'beforeinput',
      (event) => {
        const target = event.target as Element;
        const field: Field = target.closest('.cm-editor') ? 'code' : (target.id as Field);
        const typed = event.inputType === 'insertText' && event.data ? Array.from(event.data) : [];
        log.intended = { field, char: typed.length > 0 ? typed[typed.length - 1]! : null };
      },
      true,
    );
    demo.events.addEventListener('change', (event) => {
      const { field, origin } = (event as CustomEvent<{ field: Field; origin: ChangeOrigin }>).detail;
      if (origin === 'local') {
        const intended = log.intended;
        if (!intended || intended.field !== field) return;
        const now = before(field);
        if (intended.char !== null && now.char !== intended.char) {
          log.violations.push(
            `${field}: typed ${JSON.stringify(intended.char)} but ${JSON.stringify(now.char)} is before the caret at ${now.caret} in ${now.around}`,
          );
        }
        log.expected[field] = intended.char;
        return;
      }
      for (const f of Object.keys(log.expected) as Field[]) {
        const want = log.expected[f];
        if (want === null || want === undefined) continue;
        log.checks++;
        const now = before(f);
        if (now.char !== want) {
          log.violations.push(
            `${f}: after a remote change in ${field}, ${JSON.stringify(now.char)} is before the caret at ${now.caret} (expected ${JSON.stringify(want)}) in ${now.around}`,
          );
        }
      }
    });
  });
}

export async function caretLog(page: Page): Promise<CaretLog> {
  return page.evaluate(() => (window as unknown as DemoWindow).__caret!);
}

/** Focuses a field without moving its caret (textarea and CodeMirror keep their selection). */
export async function focusField(page: Page, field: Field): Promise<void> {
  await page.evaluate((f) => {
    const demo = (window as unknown as DemoWindow).tandemDemo!;
    if (f === 'code') demo.code.focus();
    else demo.fields[f].focus();
  }, field);
}

/** Focuses a field and selects [anchor, head] (UTF-16; 'end' for its length). */
export async function select(page: Page, field: Field, anchor: number | 'end', head: number | 'end' = anchor): Promise<void> {
  await page.evaluate(
    ([f, a, h]) => {
      const demo = (window as unknown as DemoWindow).tandemDemo!;
      if (f === 'code') {
        const length = demo.code.state.doc.length;
        demo.code.focus();
        demo.code.dispatch({ selection: { anchor: a === 'end' ? length : a, head: h === 'end' ? length : h } });
      } else {
        const el = demo.fields[f];
        const length = el.value.length;
        const from = a === 'end' ? length : a;
        const to = h === 'end' ? length : h;
        el.focus();
        el.setSelectionRange(Math.min(from, to), Math.max(from, to), to < from ? 'backward' : 'forward');
      }
    },
    [field, anchor, head] as const,
  );
}

/** The selected text of a field. */
export async function selectedText(page: Page, field: Field): Promise<string> {
  return page.evaluate((f) => {
    const demo = (window as unknown as DemoWindow).tandemDemo!;
    if (f === 'code') {
      const { from, to } = demo.code.state.selection.main;
      return demo.code.state.sliceDoc(from, to);
    }
    const el = demo.fields[f];
    return el.value.slice(el.selectionStart ?? 0, el.selectionEnd ?? 0);
  }, field);
}

export interface PageView {
  data: DemoData | undefined;
  pending: number;
  state: string;
  shown: DemoData;
}

/** The page's document and what its three editors show. */
export async function pageView(page: Page): Promise<PageView> {
  return page.evaluate(() => {
    const demo = (window as unknown as DemoWindow).tandemDemo!;
    return {
      data: demo.handle.data as DemoData | undefined,
      pending: demo.handle.pendingCount,
      state: demo.client.state,
      shown: { title: demo.fields.title.value, notes: demo.fields.notes.value, code: demo.code.state.doc.toString() },
    };
  });
}

/** The server's snapshot of a document, read through a server-side connection. */
export async function serverSnapshot(server: TestServer, collection: string, id: string): Promise<{ v: number; data: unknown }> {
  const doc = server.backend.connect().get(collection, id);
  await fetchDoc(doc);
  const snapshot = { v: doc.version ?? -1, data: structuredClone(doc.data) };
  doc.connection.close();
  return snapshot;
}

/**
 * Waits until every page is online with nothing pending and its data — and what its editors
 * show — equals the server's snapshot. Returns that snapshot's data.
 */
export async function waitConverged(pages: Page[], server: TestServer, id: string, timeoutMs = 20_000): Promise<DemoData> {
  let last = '';
  // Key order differs between documents built by create and by inserts: compare fields.
  const canon = (d: DemoData | undefined): string => JSON.stringify(d && [d.title, d.notes, d.code]);
  return waitFor<DemoData | null>(
    async () => {
      const snapshot = await serverSnapshot(server, 'demo', id);
      const views = await Promise.all(pages.map(pageView));
      const want = canon(snapshot.data as DemoData);
      last = JSON.stringify({ server: snapshot.data, pages: views });
      const ok = views.every((v) => v.state === 'online' && v.pending === 0 && canon(v.data) === want && canon(v.shown) === want);
      return ok ? (snapshot.data as DemoData) : null;
    },
    { timeoutMs, intervalMs: 50, what: 'pages and server to converge' },
  ).then(
    (data) => data!,
    (err: Error) => {
      throw new Error(`${err.message}; last seen: ${last.slice(0, 2000)}`);
    },
  );
}
