/**
 * A small React app on Tandem's hooks, bundled from source by react-hooks.test.ts: a
 * controlled <textarea> on `note.data.text` that submits text edits through the hook, a
 * status line from a second component on the same document, and the remote carets from
 * usePresence. Rendered in StrictMode (development build), so every effect runs twice.
 * Query: ?server=<tandem url>&doc=<id>&name=<user>. `window.reactTest` drives it.
 */
import { createElement as h, StrictMode, useState, type ChangeEvent, type SyntheticEvent } from 'react';
import { createRoot } from 'react-dom/client';
import { utf16ToCp, diffToTextOp, textEditOp } from '../../client/bindings/text-ops.js';
import { connect, type DocHandle, type TandemClient } from '../../client/index.js';
import { openDocCount } from '../../client/react/doc-store.js';
import { TandemProvider, useConnectionState, usePresence, useTandemDoc } from '../../client/react/index.js';

export interface NoteData {
  text: string;
}

/** What the page exposes to the test. */
export interface ReactTestApi {
  client: TandemClient;
  /** Shows the note (true) or unmounts every component using a document (false). */
  show(shown: boolean): void;
  /** Points the components at another document id. */
  setDoc(id: string): void;
  /** Documents the hooks hold open (or are closing). */
  openDocs(): number;
  /** Every distinct DocHandle the components rendered with, in order. */
  handles: Array<DocHandle<NoteData>>;
  /** Renders of the Note component (StrictMode renders twice each time). */
  renders: number;
}

export type ReactTestWindow = Window & { reactTest?: ReactTestApi };

const query = new URLSearchParams(location.search);
const name = query.get('name') ?? 'anon';
const client = connect({ url: query.get('server') ?? '', reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
let setShown: (shown: boolean) => void = () => undefined;
let setDocId: (id: string) => void = () => undefined;
const api: ReactTestApi = {
  client,
  show: (shown) => setShown(shown),
  setDoc: (id) => setDocId(id),
  openDocs: () => openDocCount(client),
  handles: [],
  renders: 0,
};
(window as ReactTestWindow).reactTest = api;

function Note({ id }: { id: string }) {
  const note = useTandemDoc<NoteData>('react', id, { create: { text: '' } });
  const presence = usePresence(note.handle);
  api.renders++;
  if (note.handle && !api.handles.includes(note.handle)) api.handles.push(note.handle);
  const text = note.data?.text ?? '';

  const publishCaret = (el: HTMLTextAreaElement): void => {
    const value = el.value;
    presence.set({ path: ['text'], anchor: utf16ToCp(value, el.selectionStart), head: utf16ToCp(value, el.selectionEnd), user: { name } });
  };
  const onChange = (event: ChangeEvent<HTMLTextAreaElement>): void => {
    const el = event.target;
    note.submit(textEditOp(['text'], diffToTextOp(text, el.value, el.selectionEnd)));
    publishCaret(el);
  };
  const onSelect = (event: SyntheticEvent<HTMLTextAreaElement>): void => publishCaret(event.currentTarget);

  const carets = [...presence.remotes.values()].map((p) => `${String(p.user?.name)}@${p.anchor ?? '-'}`).sort();
  return h(
    'section',
    { id: 'note', 'data-ready': String(note.ready), 'data-version': String(note.version), 'data-pending': String(note.pending) },
    h('textarea', { id: 'text', value: text, disabled: !note.ready, onChange, onSelect }),
    h('pre', { id: 'shown' }, text),
    h(
      'ul',
      { id: 'carets' },
      carets.map((caret) => h('li', { key: caret }, caret)),
    ),
  );
}

/** A second user of the same document: both share one handle. */
function Status({ id }: { id: string }) {
  const note = useTandemDoc<NoteData>('react', id);
  const state = useConnectionState();
  return h(
    'p',
    {
      id: 'status',
      'data-state': state,
      'data-version': String(note.version),
      'data-pending': String(note.pending),
      'data-error': note.error?.code ?? '',
    },
    `${state} v${String(note.version)} pending ${note.pending}`,
  );
}

function App({ initialId }: { initialId: string }) {
  const [shown, show] = useState(true);
  const [id, setId] = useState(initialId);
  setShown = show;
  setDocId = setId;
  return h(
    TandemProvider,
    { client },
    shown ? h('main', null, h(Note, { id }), h(Status, { id })) : h('p', { id: 'unmounted' }, 'unmounted'),
  );
}

const root = document.getElementById('root');
if (!root) throw new Error('no #root');
createRoot(root).render(h(StrictMode, null, h(App, { initialId: query.get('doc') ?? 'doc' })));
