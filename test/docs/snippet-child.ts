/**
 * The child-process side of a README snippet run: gives the snippet what a browser page
 * would have (IndexedDB, from fake-indexeddb) and a recording `console`, calls it, then
 * reports what it left behind (clients, documents, ShareDB connections) on stdout for the
 * test to compare with the server, and closes everything. One snippet per process, so a
 * snippet's globals (its IndexedDB, a type it registers) never reach other tests.
 */
import { format } from 'node:util';
import { IDBFactory } from 'fake-indexeddb';
import { Connection } from 'sharedb/lib/client/index.js';
import { DocHandle, TandemClient } from '../../client/index.js';
import { waitFor } from '../helpers/wait.js';

/** What a snippet may call `console` for; the test records it instead of printing it. */
export type SnippetConsole = Pick<Console, 'log' | 'info' | 'warn' | 'error'>;

/** The line prefix the parent looks for in the child's stdout. */
export const REPORT_MARKER = 'README-SNIPPET-REPORT ';

/** What the snippet left in one of its top-level names. */
export type LocalReport =
  | { kind: 'client'; state: string; id: string }
  | { kind: 'doc'; collection: string; id: string; data: unknown; version: number | null; pendingCount: number }
  | { kind: 'connection'; state: string; createdWith: string | null }
  | { kind: 'other'; type: string };

export interface SnippetReport {
  /** The snippet threw (or a check of what it left failed): the error, with its stack. */
  readonly error: string | null;
  readonly locals: Record<string, LocalReport>;
  readonly console: string[];
}

const DEADLINE_MS = 20_000;

function deadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${DEADLINE_MS} ms: ${what}`)), DEADLINE_MS)),
    ),
  ]).finally(() => clearTimeout(timer));
}

/** Creates a json1 document on `connection`: proves the type is registered and the server takes it. */
function createJson1(connection: Connection, id: string): Promise<string> {
  const doc = connection.get('readme_walkthrough', id);
  return new Promise((resolve, reject) =>
    doc.create({ from: 'README' }, 'json1', (err) => (err ? reject(err) : resolve(String(doc.type?.name)))),
  );
}

async function inspect(name: string, value: unknown, closers: Array<() => Promise<void> | void>): Promise<LocalReport> {
  if (value instanceof TandemClient) {
    closers.push(() => value.close());
    await deadline(value.whenOnline(), `client ${name} online`);
    return { kind: 'client', state: value.state, id: value.id };
  }
  if (value instanceof DocHandle) {
    await deadline(value.whenSynced(), `document ${name} synced`);
    return {
      kind: 'doc',
      collection: value.collection,
      id: value.id,
      data: structuredClone(value.data) as unknown,
      version: value.version,
      pendingCount: value.pendingCount,
    };
  }
  if (value instanceof Connection) {
    closers.push(() => value.close());
    // A raw Connection reports failures as 'error' events, fatal when nobody listens (README).
    value.on('error', () => undefined);
    await waitFor(() => value.state === 'connected', { timeoutMs: DEADLINE_MS, what: `connection ${name} connected (now ${value.state})` });
    const createdWith = await deadline(createJson1(value, `${name}-${process.pid}`), `a json1 create on ${name}`);
    return { kind: 'connection', state: value.state, createdWith };
  }
  return { kind: 'other', type: typeof value };
}

/**
 * Runs `snippet` and prints its report (REPORT_MARKER + JSON) as the last stdout line, then
 * exits: the snippet's sockets must not keep the process alive, and the parent holds the
 * deadline of the whole run.
 */
export async function runSnippetChild(snippet: (console: SnippetConsole) => unknown): Promise<never> {
  // Browser snippets construct IndexedDbOutboxStore(), which reads the global indexedDB.
  globalThis.indexedDB = new IDBFactory();
  const lines: string[] = [];
  const record =
    (level: string) =>
    (...args: unknown[]) => {
      lines.push(`${level}: ${format(...args)}`);
    };
  const recorder: SnippetConsole = { log: record('log'), info: record('info'), warn: record('warn'), error: record('error') };
  const closers: Array<() => Promise<void> | void> = [];
  const locals: Record<string, LocalReport> = {};
  let error: string | null = null;
  try {
    const left = await deadline(Promise.resolve(snippet(recorder)), 'the snippet');
    for (const [name, value] of Object.entries((left ?? {}) as Record<string, unknown>)) {
      locals[name] = await inspect(name, value, closers);
    }
  } catch (err) {
    error = err instanceof Error ? (err.stack ?? err.message) : String(err);
  }
  for (const close of closers.reverse()) {
    try {
      await close();
    } catch (err) {
      error ??= `closing: ${String(err)}`;
    }
  }
  const report: SnippetReport = { error, locals, console: lines };
  await new Promise<void>((resolve) => process.stdout.write(`${REPORT_MARKER}${JSON.stringify(report)}\n`, () => resolve()));
  process.exit(0);
}
