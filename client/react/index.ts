/**
 * React hooks for Tandem (`@tandem/client/react`; React >= 18 is a peer dependency).
 *
 *   const client = connect({ url });
 *   root.render(createElement(TandemProvider, { client }, createElement(Editor, { id: 'n1' })));
 *
 *   function Editor({ id }: { id: string }) {
 *     const note = useTandemDoc<Note>('notes', id, { create: { title: '' } });
 *     const { remotes, set } = usePresence(note.handle);
 *     if (!note.ready) return 'Loading…';
 *     // note.data, note.version, note.pending, note.state; note.submit(ops.textInsert(...))
 *   }
 */
export { TandemProvider, useTandemClient, useConnectionState, type TandemProviderProps } from './context.js';
export { useTandemDoc, type TandemDoc } from './use-tandem-doc.js';
export { usePresence, type TandemPresence } from './use-presence.js';
export type { DocSnapshot } from './doc-store.js';
export type { PresenceSnapshot } from './presence-store.js';
