/**
 * Editor bindings for Tandem documents: a dependency-free <textarea>/<input> binding, its
 * remote carets, and adapters from the SDK's handles. The CodeMirror 6 binding has its own
 * entry (`client/codemirror.ts`, published as `@tandem/client/codemirror`) so this one never
 * loads CodeMirror.
 *
 *   const doc = bindableDoc(handle);                      // handle = client.doc(...)
 *   const presence = presenceChannel(handle.presence());
 *   bindTextField(textarea, doc, ['notes'], { presence, user });
 *   fieldRemoteCursors(textarea, ['notes'], presence);
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
  HistoryCommand,
} from './types.js';
export { bindTextField, type TextField } from './textarea.js';
export { fieldRemoteCursors } from './field-cursors.js';
export { bindableDoc, presenceChannel, asCursorPresence, type DocHandleLike, type PresenceHandleLike } from './sdk-adapter.js';
export { cpLength, cpToUtf16, utf16ToCp, diffToTextOp, stringChangeAt, mapOffset, type StringChange } from './text-ops.js';
