/**
 * The demo page served at `/`: one shared document with a title (<input>), notes
 * (<textarea>) and code (CodeMirror 6); a bar with connection state, pending ops, who is
 * here, and a button that takes this tab offline and back.
 *
 * Query parameters: `server` (socket.io URL, default this page's origin), `doc` (document
 * id, default 'welcome'), `name` / `color` (this user; otherwise random, kept per tab),
 * `durable=0` (no IndexedDB outbox).
 */
import './demo.css';
import { drawSelection, highlightActiveLine, lineNumbers, EditorView } from '@codemirror/view';
import { connect, IndexedDbOutboxStore, ops, type TandemClient, type DocHandle } from '../client/index.js';
import { createCollabEditor } from '../client/bindings/codemirror.js';
import { fieldRemoteCursors } from '../client/bindings/field-cursors.js';
import { bindableDoc, presenceChannel } from '../client/bindings/sdk-adapter.js';
import { bindTextField } from '../client/bindings/textarea.js';
import { stringAt } from '../client/bindings/text-ops.js';
import type { ChangeOrigin, PresenceUser } from '../client/bindings/types.js';
import { randomUser } from '../client/embed.js';

interface DemoDoc {
  title: string;
  notes: string;
  code: string;
}
type Field = keyof DemoDoc;

const INITIAL: DemoDoc = {
  title: 'Welcome to Tandem',
  notes: 'Everyone on this page edits the same document.\nType here, in the title, or in the code.\n',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: JavaScript shown in the demo's editor
  code: 'function greet(name) {\n  return `Hello, ${name}!`;\n}\n',
};

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

function currentUser(params: URLSearchParams): PresenceUser {
  // Per tab (sessionStorage): two tabs are two users, and a reload keeps the identity.
  let stored: PresenceUser | null = null;
  try {
    stored = JSON.parse(sessionStorage.getItem('tandem-demo-user') ?? 'null') as PresenceUser | null;
  } catch {
    stored = null;
  }
  const user = { ...randomUser(), ...stored };
  if (params.get('name')) user.name = params.get('name')!;
  if (params.get('color')) user.color = params.get('color')!;
  sessionStorage.setItem('tandem-demo-user', JSON.stringify(user));
  return user;
}

let shownPeople = '';

/** The bar's "who is here": this user first, then everyone else, with where they are. */
function renderPeople(me: PresenceUser, others: Iterable<{ user?: PresenceUser; path: unknown[] }>): void {
  const people = [{ user: me, where: '', isMe: true }];
  for (const p of others) if (p.user) people.push({ user: p.user, where: p.path.join('.'), isMe: false });
  // Presence changes with every caret move; rebuild the chips only when they differ.
  const key = JSON.stringify(people);
  if (key === shownPeople) return;
  shownPeople = key;
  $('people').replaceChildren(
    ...people.map(({ user, where, isMe }) => {
      const el = document.createElement('span');
      el.className = isMe ? 'person me' : 'person';
      el.dataset.name = user.name;
      const dot = document.createElement('i');
      dot.style.background = user.color;
      el.append(dot, isMe ? `${user.name} (you)` : user.name);
      if (where) {
        const place = document.createElement('small');
        place.textContent = `in ${where}`;
        el.append(place);
      }
      return el;
    }),
  );
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const server = params.get('server') ?? location.origin;
  const docId = params.get('doc') ?? 'welcome';
  const user = currentUser(params);
  $('doc-id').textContent = `Document: demo/${docId}.`;

  // `durable=0` keeps unsent edits in memory only (to compare, or where IndexedDB is off).
  const durable = params.get('durable') !== '0';
  // A server with authentication: `?token=<JWT>` (e.g. from `tandem token --sub ada`).
  const token = params.get('token');
  const client: TandemClient = connect({
    url: server,
    ...(token ? { getToken: () => token } : {}),
    outbox: durable ? new IndexedDbOutboxStore() : null,
    // A demo should come back quickly: retry at most every 2 s (the SDK default is 5 s).
    reconnect: { maxDelayMs: 2_000 },
  });
  // When the browser reports the network back, reconnect now instead of waiting out the
  // backoff (a drop and a re-open of the connection; not while offline on purpose).
  window.addEventListener('online', () => {
    if (client.heldOffline || client.state === 'online') return;
    client.goOffline();
    client.goOnline();
  });
  const handle: DocHandle<DemoDoc> = client.doc<DemoDoc>('demo', docId, { create: INITIAL });
  const events = new EventTarget();
  const showError = (message: string): void => {
    const el = $('error');
    el.hidden = false;
    el.textContent = message;
  };
  handle.on('error', (err) => showError(`${err.code}: ${err.message}`));
  handle.on('rejected', (r) => showError(`An edit was refused (${r.code}): ${r.message}`));

  const stateEl = $('state');
  const pendingEl = $('pending');
  const toggle = $<HTMLButtonElement>('offline-toggle');
  const updateBar = (): void => {
    const state = client.heldOffline ? 'offline' : client.state;
    stateEl.dataset.state = state;
    $('state-text').textContent = client.heldOffline ? 'offline (simulated)' : state;
    const pending = handle.pendingCount;
    pendingEl.dataset.count = String(pending);
    pendingEl.textContent = `${pending} pending${handle.durable ? ' · saved on this device' : ''}`;
    toggle.textContent = client.heldOffline ? 'Go online' : 'Go offline';
    toggle.setAttribute('aria-pressed', String(client.heldOffline));
  };
  client.on('state', updateBar);
  handle.on('change', updateBar);
  // Acknowledgements change the pending count without a document event.
  setInterval(updateBar, 250);
  toggle.addEventListener('click', () => {
    if (client.heldOffline) client.goOnline();
    else client.goOffline();
    updateBar();
  });
  updateBar();
  renderPeople(user, []);

  await handle.ready;
  // Documents made by older demo versions may lack a field: add it empty.
  for (const field of Object.keys(INITIAL) as Field[]) {
    if (stringAt(handle.data, [field]) === null) handle.submit(ops.insert([field], ''), { undoable: false });
  }

  const doc = bindableDoc(handle);
  const presence = presenceChannel(handle.presence());
  presence.submit({ path: [], user });
  presence.onChange((remotes) => renderPeople(user, remotes.values()));
  renderPeople(user, presence.remotes().values());

  const notify = (field: Field) => (origin: ChangeOrigin) => events.dispatchEvent(new CustomEvent('change', { detail: { field, origin } }));
  const title = $<HTMLInputElement>('title');
  const notes = $<HTMLTextAreaElement>('notes');
  bindTextField(title, doc, ['title'], { presence, user, onChange: notify('title') });
  bindTextField(notes, doc, ['notes'], { presence, user, onChange: notify('notes') });
  fieldRemoteCursors(title, ['title'], presence);
  fieldRemoteCursors(notes, ['notes'], presence);
  const code = createCollabEditor($('code'), doc, ['code'], {
    presence,
    user,
    onChange: notify('code'),
    extensions: [lineNumbers(), highlightActiveLine(), drawSelection(), EditorView.lineWrapping],
  });
  title.disabled = false;
  notes.disabled = false;
  $('app').dataset.ready = 'true';

  // For people poking around in the console, and for the browser tests.
  Object.assign(window, {
    tandemDemo: { client, handle, presence, user, events, fields: { title, notes }, code: code.view },
  });
}

main().catch((err: unknown) => {
  const el = document.getElementById('error');
  if (el) {
    el.hidden = false;
    el.textContent = `The demo failed to start: ${err instanceof Error ? err.message : String(err)}`;
  }
  console.error(err);
});
