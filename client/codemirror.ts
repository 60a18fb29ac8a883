/**
 * The CodeMirror 6 binding (`@tandem/client/codemirror`): kept out of the bindings entry so
 * apps that bind only textareas need not install CodeMirror (an optional peer dependency).
 *
 *   createCollabEditor(parent, bindableDoc(handle), ['code'], { presence, user });
 */
export { collab, createCollabEditor, changeSetToTextOp, type CodeMirrorBindingOptions } from './bindings/codemirror.js';
export { remoteCursors, setRemoteCursors, shownRemoteCursors, type RemoteCursor } from './bindings/remote-cursors.js';
