/**
 * A consumer of the SDK's public types, written as an application would: strict mode, no
 * casts, no `any`. `npm test` type-checks it (tsc) and runs it (consumer.test.ts). The
 * `@ts-expect-error` lines prove the types also refuse wrong use.
 */
import {
  connect,
  IndexedDbOutboxStore,
  MemoryOutboxStore,
  ops,
  TandemError,
  TandemErrorCode,
  type ConnectionState,
  type DocHandle,
  type ErrorCode,
  type Json1Presence,
  type JSONOp,
  type LockManagerLike,
  type OpMeta,
  type OpRejection,
  type OutboxStore,
  type PresenceHandle,
  type TandemClient,
} from '../../client/index.js';
import { SqliteOutboxStore } from '../../client/node.js';

/** The app's document shape: an interface, as apps write them. */
export interface TodoList {
  title: string;
  todos: Array<{ text: string; done: boolean }>;
  meta: { revision: number };
}

/** The app's cursor: our presence type plus its own user fields. */
export interface Caret extends Json1Presence {
  user: { name: string; color: string };
}

export interface ConsumerResult {
  states: ConnectionState[];
  title: string;
  todoCount: number;
  ops: Array<OpMeta['source']>;
  errors: ErrorCode[];
  version: number | null;
  caretAfterTyping: number | null;
}

/** Browser code would pass `navigator.locks`; the DOM's LockManager fits `LockManagerLike`. */
export function browserLocks(): LockManagerLike | null {
  return typeof navigator !== 'undefined' && 'locks' in navigator ? navigator.locks : null;
}

/** Either durable store fits the one interface. */
export function pickStore(kind: 'browser' | 'node' | 'memory', path: string): OutboxStore {
  if (kind === 'browser') return new IndexedDbOutboxStore({ databaseName: 'todos' });
  if (kind === 'node') return new SqliteOutboxStore({ path });
  return new MemoryOutboxStore();
}

export async function runConsumer(url: string): Promise<ConsumerResult> {
  const client: TandemClient = connect({ url, outbox: new MemoryOutboxStore(), locks: null });
  const states: ConnectionState[] = [client.state];
  client.on('state', (state) => states.push(state));

  const doc: DocHandle<TodoList> = client.doc<TodoList>('todos', 'consumer', {
    create: { title: 'Groceries', todos: [], meta: { revision: 0 } },
  });
  await doc.ready;

  const seen: Array<OpMeta['source']> = [];
  const errors: ErrorCode[] = [];
  doc.on('op', (op: JSONOp, meta: OpMeta) => {
    if (op !== null) seen.push(meta.source);
  });
  doc.on('change', () => {
    // Typed, read-only data: no casts needed to read it.
    const first = doc.data?.todos[0]?.text;
    void first;
  });
  doc.on('rejected', (rejection: OpRejection) => errors.push(rejection.code));
  doc.on('error', (error: TandemError) => errors.push(error.code));

  doc.submit(ops.insert(['todos', 0], { text: 'milk', done: false }));
  doc.submit(ops.textInsert(['title'], 0, 'Weekly '));
  doc.submit(ops.add(['meta', 'revision'], 1));
  await doc.whenSaved();
  await doc.whenSynced();

  try {
    doc.submit(ops.textInsert(['no-such-field'], 0, 'x'));
  } catch (err) {
    if (err instanceof TandemError && err.code === TandemErrorCode.INVALID_OP) errors.push(err.code);
  }

  const presence: PresenceHandle<Caret> = doc.presence<Caret>();
  presence.on('change', (id: string, caret: Caret | null) => {
    if (caret) void `${id} ${caret.user.name} at ${caret.anchor ?? 0}`;
  });
  presence.submit({ path: ['title'], anchor: 0, head: 0, user: { name: 'me', color: '#f80' } });
  doc.submit(ops.textInsert(['title'], 0, '> '));
  const caretAfterTyping = presence.value?.anchor ?? null;

  const result: ConsumerResult = {
    states,
    title: doc.data?.title ?? '',
    todoCount: doc.data?.todos.length ?? 0,
    ops: seen,
    errors,
    version: doc.version,
    caretAfterTyping,
  };

  await doc.whenSynced();
  await client.close();
  return result;
}

/** Never called: each line must fail to compile (tsc reports an unused @ts-expect-error). */
export function misuse(client: TandemClient, doc: DocHandle<TodoList>, presence: PresenceHandle<Caret>): void {
  // @ts-expect-error data is read-only
  if (doc.data) doc.data.title = 'mutated';
  // @ts-expect-error submit takes a json1 op, not a string
  doc.submit('insert milk');
  // @ts-expect-error unknown event name
  doc.on('opp', () => undefined);
  // @ts-expect-error 'rejected' listeners receive an OpRejection, not a string
  doc.on('rejected', (rejection: string) => rejection);
  // @ts-expect-error the document shape is checked on create
  client.doc<TodoList>('todos', 'typed', { create: { title: 1 } });
  // @ts-expect-error presence values need a path
  presence.submit({ anchor: 1, user: { name: 'x', color: 'y' } });
  // @ts-expect-error connection states are a closed set
  const state: ConnectionState = 'reconnecting';
  void state;
}
