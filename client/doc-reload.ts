/**
 * Starting a document over from the server's latest snapshot, shared by the two ways out of
 * pending ops the server can no longer rebase: giving them up (DocHandle.discardPending) and
 * re-expressing them (doc-reexpress.ts).
 */
import type { Doc } from 'sharedb/lib/client/index.js';
import { type DocSync, isMissingHistory, toTandemError } from './doc-sync.js';
import type { DocInternals } from './sharedb-internals.js';
import type { UndoManager } from './undo-manager.js';

/** What starting over needs from the document handle. */
export interface DocReloadHost {
  readonly doc: Doc;
  readonly d: DocInternals;
  readonly sync: DocSync;
  readonly history: UndoManager;
  closed(): boolean;
  onDocError(err: unknown): void;
}

/**
 * Drops the unacknowledged ops and what the document was based on, so the next load takes
 * the server's snapshot whole (discardPending, reexpress). Nothing is saved to the outbox
 * while the version is unknown.
 */
export function forgetLocalState(host: Pick<DocReloadHost, 'd' | 'sync' | 'history'>): void {
  host.d.inflightOp = null;
  host.d.pendingOps = [];
  host.d.version = null;
  host.d._setType(null);
  host.sync.confirmed = undefined;
  host.history.clear();
}

/**
 * Subscribes from version null: the server sends its whole snapshot, no history needed.
 * `loaded` runs once the document is at the server's version again.
 */
export function reload(host: DocReloadHost, loaded?: () => void): void {
  // A subscribe still in flight (for the old version) absorbs a new request; join it,
  // then ask again if it did not load the document.
  host.doc.subscribe((err) => {
    if (host.closed()) return;
    if (host.d.version !== null && host.d.subscribed) return loaded?.();
    if (err && !isMissingHistory(toTandemError(err).code)) {
      host.onDocError(err);
      return;
    }
    host.doc.subscribe((again) => {
      if (again) host.onDocError(again);
      else if (!host.closed()) loaded?.();
    });
  });
}
