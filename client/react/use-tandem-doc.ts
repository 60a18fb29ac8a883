import { useCallback, useMemo, useSyncExternalStore } from 'react';
import type { JsonValue, JSONOp } from '../../ot-types/index.js';
import type { DocOptions, SubmitOptions } from '../doc-handle.js';
import { TandemError, TandemErrorCode } from '../protocol.js';
import type { ConnectionState } from '../tandem-client.js';
import { useConnectionState, useTandemClient } from './context.js';
import { docSnapshot, IDLE_SNAPSHOT, subscribeDoc, type DocSnapshot } from './doc-store.js';

/** What `useTandemDoc` returns: the document's state as of this render, and how to edit it. */
export interface TandemDoc<T> extends DocSnapshot<T> {
  /** The client's connection state. */
  readonly state: ConnectionState;
  /**
   * `handle.submit(op)`: applies a json1 op now and queues it for the server. Throws a
   * TandemError (TANDEM_DOC_NOT_READY) before the document is open, or for an invalid op.
   */
  readonly submit: (op: JSONOp, options?: SubmitOptions) => void;
  /** `handle.undo()` / `handle.redo()`: this client's own last step; false when there is none (or not open). */
  readonly undo: () => boolean;
  readonly redo: () => boolean;
}

const noSubscription = (): (() => void) => () => undefined;

/**
 * Opens document `collection/id` of the provider's client while the component is mounted,
 * and re-renders on every change: data, version, pending count, readiness, errors and the
 * connection state. Components using the same document share one DocHandle, closed shortly
 * after the last of them unmounted (or moved to another `id`). `id === null` opens nothing.
 *
 * `options` (e.g. `{ create: initialData }`) are those of `client.doc()`: they count when
 * the document is opened, later changes are ignored. Listening to the handle's 'error' and
 * 'rejected' events, the hook reports them as `error` instead of the console.
 *
 * Handles opened here belong to the hooks: do not `close()` them yourself.
 */
export function useTandemDoc<T = JsonValue>(collection: string, id: string | null, options: DocOptions<T> = {}): TandemDoc<T> {
  const client = useTandemClient();
  // Deliberately keyed without `options`: they apply when the document opens (see above),
  // and an inline object literal would otherwise resubscribe on every render.
  // biome-ignore lint/correctness/useExhaustiveDependencies: options count only when the document opens (above)
  const subscribe = useCallback(
    (notify: () => void) => (id === null ? noSubscription() : subscribeDoc(client, collection, id, options, notify)),
    [client, collection, id],
  );
  const getSnapshot = useCallback(() => (id === null ? IDLE_SNAPSHOT : docSnapshot(client, collection, id)), [client, collection, id]);
  // One handle per document whatever T: T is the caller's declared shape of its data.
  const snapshot = useSyncExternalStore(subscribe, getSnapshot, getSnapshot) as DocSnapshot<T>;
  const state = useConnectionState();
  const handle = snapshot.handle;
  const submit = useCallback(
    (op: JSONOp, submitOptions?: SubmitOptions) => {
      if (!handle) throw new TandemError(TandemErrorCode.DOC_NOT_READY, `document ${collection}/${id} is not open yet`);
      handle.submit(op, submitOptions);
    },
    [handle, collection, id],
  );
  const undo = useCallback(() => handle?.undo() ?? false, [handle]);
  const redo = useCallback(() => handle?.redo() ?? false, [handle]);
  return useMemo(() => ({ ...snapshot, state, submit, undo, redo }), [snapshot, state, submit, undo, redo]);
}
