/**
 * The embed API: one call puts a collaborative editor for one string of a Tandem document
 * into a page.
 *
 *   import { mount } from '@tandem/client/embed';        // ES module
 *   const editor = mount(el, { url, collection: 'notes', id: 'n1', path: ['body'] });
 *   editor.destroy();
 *
 * The script-tag bundle (dist/tandem-embed.js) exposes the same as `window.Tandem.mount`.
 * Mounts in one page share one connection per server URL and one handle per document.
 */
import type { Doc as JsonValue, Path } from 'ot-json1';
import { connect, type TandemClient } from './index.js';
import type { DocHandle } from './doc-handle.js';
import { IndexedDbOutboxStore } from './offline/indexeddb-store.js';
import { createCollabEditor } from './bindings/codemirror.js';
import { bindableDoc, presenceChannel } from './bindings/sdk-adapter.js';
import { bindTextField } from './bindings/textarea.js';
import { fieldRemoteCursors } from './bindings/field-cursors.js';
import { stringAt, valueAt } from './bindings/text-ops.js';
import type { Binding, PresenceUser } from './bindings/types.js';
import { setOp } from '../ot-types/index.js';

export interface MountOptions {
  /** Server URL, e.g. 'https://tandem.example.com' (socket.io at its default path). */
  url: string;
  collection: string;
  id: string;
  /** Path of the string to edit inside the document, e.g. ['body']. */
  path: Path;
  /** How others see this user; a random name and colour when left out. */
  user?: Partial<PresenceUser>;
  /** 'codemirror' (default), 'textarea' or 'input'. */
  editor?: 'codemirror' | 'textarea' | 'input';
  /** The document created when it does not exist yet. Default: just the string, empty. */
  initial?: JsonValue;
  /** Keep edits made offline in IndexedDB so they survive a reload. Default true. */
  durable?: boolean;
  /** For servers with authentication: returns the user's JWT (see ClientOptions.getToken). */
  getToken?: () => string | Promise<string>;
}

export interface MountedEditor {
  /** Resolves when the document is loaded and the editor shows it. */
  readonly ready: Promise<void>;
  /** Removes the editor and lets go of the document (and of the connection, if unused). */
  destroy(): Promise<void>;
}

const COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#9a6324', '#d6336c'];
const ANIMALS = ['Otter', 'Heron', 'Lynx', 'Marten', 'Puffin', 'Ibex', 'Gecko', 'Wren'];

/** A random display name and colour (for users who did not give one). */
export function randomUser(): PresenceUser {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
  return { name: `${pick(ANIMALS)} ${Math.floor(Math.random() * 90 + 10)}`, color: pick(COLORS) };
}

interface Shared<T> {
  value: T;
  refs: number;
}
const clients = new Map<string, Shared<TandemClient>>();
const docs = new Map<string, Shared<DocHandle>>();

function takeClient(url: string, durable: boolean, getToken: MountOptions['getToken']): TandemClient {
  const key = `${durable}|${url}`;
  let entry = clients.get(key);
  if (!entry) {
    const outbox = durable && typeof indexedDB !== 'undefined' ? new IndexedDbOutboxStore() : null;
    // The first mount on a URL decides the client's token provider (one client per user).
    entry = { value: connect({ url, outbox, ...(getToken ? { getToken } : {}) }), refs: 0 };
    clients.set(key, entry);
  }
  entry.refs++;
  return entry.value;
}

async function releaseClient(url: string, durable: boolean): Promise<void> {
  const key = `${durable}|${url}`;
  const entry = clients.get(key);
  if (!entry || --entry.refs > 0) return;
  clients.delete(key);
  await entry.value.close();
}

/** The document created when it is missing: the path's objects around an empty string. */
function initialFor(path: Path): JsonValue {
  let value: JsonValue = '';
  for (const key of [...path].reverse()) value = typeof key === 'number' ? [value] : { [key]: value };
  return value;
}

export function mount(element: Element, options: MountOptions): MountedEditor {
  const durable = options.durable !== false;
  const user: PresenceUser = { ...randomUser(), ...options.user };
  const client = takeClient(options.url, durable, options.getToken);
  const docKey = `${durable}|${options.url}|${options.collection}|${options.id}`;
  const docEntry = docs.get(docKey) ?? {
    value: client.doc(options.collection, options.id, { create: options.initial ?? initialFor(options.path) }),
    refs: 0,
  };
  docs.set(docKey, docEntry);
  docEntry.refs++;
  const handle = docEntry.value;

  const root = element.ownerDocument.createElement('div');
  root.className = 'tandem-embed';
  // The textarea's remote-caret overlay is placed relative to this box.
  root.style.position = 'relative';
  root.dataset.state = 'loading';
  element.append(root);

  let binding: Binding | null = null;
  let presence: ReturnType<typeof presenceChannel> | null = null;
  let destroyed = false;

  const ready = handle.ready.then(() => {
    if (destroyed) return;
    // An existing document without our string: add it (an empty string) if its parent exists.
    if (stringAt(handle.data, options.path) === null && options.path.length > 0) {
      const parent = valueAt(handle.data, options.path.slice(0, -1));
      if (parent !== null && typeof parent === 'object') {
        handle.submit(setOp(options.path, '', valueAt(handle.data, options.path) !== undefined));
      }
    }
    const doc = bindableDoc(handle);
    presence = presenceChannel(handle.presence());
    presence.submit({ path: [], user });
    const bindingOptions = { presence, user };
    const kind = options.editor ?? 'codemirror';
    if (kind === 'codemirror') {
      binding = createCollabEditor(root, doc, options.path, bindingOptions);
    } else {
      const field = element.ownerDocument.createElement(kind === 'input' ? 'input' : 'textarea');
      field.className = 'tandem-field';
      root.append(field);
      const text = bindTextField(field, doc, options.path, bindingOptions);
      const cursors = fieldRemoteCursors(field, options.path, presence);
      binding = {
        destroy: () => {
          cursors.destroy();
          text.destroy();
        },
      };
    }
    root.dataset.state = 'ready';
  });
  ready.catch(() => {
    root.dataset.state = 'error';
  });

  return {
    ready,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      binding?.destroy();
      // The presence handle belongs to the document handle: closing that hides us.
      presence?.close();
      root.remove();
      if (--docEntry.refs === 0) {
        docs.delete(docKey);
        await handle.close();
      }
      await releaseClient(options.url, durable);
    },
  };
}

export { connect, IndexedDbOutboxStore } from './index.js';
export { ops } from '../ot-types/index.js';
// Everything needed to bind editors by hand (e.g. several fields of one document).
export * from './bindings/index.js';
export * from './codemirror.js';
