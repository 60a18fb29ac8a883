/**
 * Editor bindings for Tandem documents: a dependency-free <textarea>/<input> binding, a
 * CodeMirror 6 binding, remote carets for both, and adapters from the SDK's handles.
 *
 *   const doc = bindableDoc(handle);                      // handle = client.doc(...)
 *   const presence = presenceChannel(handle.presence());
 *   bindTextField(textarea, doc, ['notes'], { presence, user });
 *   fieldRemoteCursors(textarea, ['notes'], presence);
 *   createCollabEditor(parent, doc, ['code'], { presence, user });
 */
export type {
  BindableDoc,
  Binding,
  BindingOptions,
  ChangeOrigin,
  CursorPresence,
  PresenceChannel,
  PresenceUser,
  RemotePresences,
} from './types.js';
export { bindTextField, type TextField } from './textarea.js';
export { fieldRemoteCursors } from './field-cursors.js';
export { collab, createCollabEditor, changeSetToTextOp, type CodeMirrorBindingOptions } from './codemirror.js';
export { remoteCursors, setRemoteCursors, shownRemoteCursors, type RemoteCursor } from './remote-cursors.js';
export { bindableDoc, presenceChannel, asCursorPresence, type DocHandleLike, type PresenceHandleLike } from './sdk-adapter.js';
export { cpLength, cpToUtf16, utf16ToCp, diffToTextOp, stringChangeAt, mapOffset, type StringChange } from './text-ops.js';
