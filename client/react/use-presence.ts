import { useCallback, useMemo, useSyncExternalStore } from 'react';
import type { Json1Presence } from '../../ot-types/index.js';
import type { DocHandle } from '../doc-handle.js';
import { EMPTY_PRESENCE, presenceSnapshot, setPresence, subscribePresence, type PresenceSnapshot } from './presence-store.js';

/** What `usePresence` returns. */
export interface TandemPresence<P> extends PresenceSnapshot<P> {
  /** Publishes our presence (cursor, selection, user…); null hides it. Coalesced to the server's rate. */
  readonly set: (value: P | null) => void;
}

const noSubscription = (): (() => void) => () => undefined;

/**
 * Presence on a document — pass `useTandemDoc(...).handle`; null while it is not open.
 * Re-renders when someone's presence appears, moves or leaves. When the last component
 * using the document's presence unmounts, our own presence is cleared for the others.
 *
 *   const note = useTandemDoc<Note>('notes', id);
 *   const { remotes, set } = usePresence(note.handle);
 */
export function usePresence<P extends Json1Presence = Json1Presence, D = unknown>(doc: DocHandle<D> | null | undefined): TandemPresence<P> {
  // The presence store is per handle, whatever the caller's document type.
  const handle = (doc ?? null) as DocHandle<unknown> | null;
  const subscribe = useCallback((notify: () => void) => (handle ? subscribePresence(handle, notify) : noSubscription()), [handle]);
  const getSnapshot = useCallback(() => (handle ? presenceSnapshot(handle) : EMPTY_PRESENCE), [handle]);
  // One presence per document handle; P only narrows what the caller submits and reads (as DocHandle.presence<P>()).
  const snapshot = useSyncExternalStore(subscribe, getSnapshot, getSnapshot) as PresenceSnapshot<P>;
  const set = useCallback(
    (value: P | null) => {
      if (handle) setPresence(handle, value);
    },
    [handle],
  );
  return useMemo(() => ({ remotes: snapshot.remotes, local: snapshot.local, set }), [snapshot, set]);
}
