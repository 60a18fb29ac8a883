import type { JSONOp } from 'ot-json1';
import type { DocCore } from './doc-open.js';
import { toTandemError } from './doc-sync.js';
import type { DocContext } from './doc-types.js';
import type { DocLease } from './offline/doc-lock.js';
import type { PresenceHandle } from './presence-handle.js';
import { TandemError, TandemErrorCode } from './protocol.js';
import type { SendRetry } from './send-retry.js';
import { connectionInternals, unsubscribeWhileOnline } from './sharedb-internals.js';
import type { UndoManager } from './undo-manager.js';

/** What closing needs from the document handle. */
export interface DocCloseHost extends DocCore {
  readonly ctx: Pick<DocContext, 'connection' | 'released'>;
  readonly history: UndoManager;
  readonly retries: SendRetry;
  lease(): DocLease | null;
  presence(): PresenceHandle | null;
  /** The handle's listeners on the doc: the very functions it added, so that they come off. */
  readonly onOp: (op: JSONOp, source: unknown) => void;
  readonly onChange: () => void;
  readonly onDocError: (err: unknown) => void;
  emitError(error: TandemError): void;
  removeAllListeners(): void;
}

/**
 * Closing a handle: one ordered teardown (the outbox saved before the doc is let go, our
 * presence removed before the handle counts as closed), and the end of every wait the handle
 * offers (`ready`, `whenSynced`), which must not outlive it.
 */
export class DocCloser {
  private isClosed = false;
  private closing: Promise<void> | null = null;
  /** Waits that must not outlive the handle (`ready`, `whenSynced`): close() rejects them with CLOSED. */
  readonly waiters = new Set<(err: TandemError) => void>();

  constructor(private readonly host: DocCloseHost) {}

  get closed(): boolean {
    return this.isClosed;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const { ctx, doc, d } = this.host;
    this.isClosed = true;
    this.host.history.clear();
    this.host.retries.cancel();
    const closedError = new TandemError(TandemErrorCode.CLOSED, `document ${this.host.collection}/${this.host.id} was closed`);
    for (const reject of [...this.waiters]) reject(closedError);
    this.waiters.clear();
    const presenceClosed = this.host.presence()?.close();
    this.host.gate.hold('closed');
    await this.host.outbox()?.close();
    this.host.sync.detach();
    doc.off('op', this.host.onOp);
    doc.off('load', this.host.onChange);
    doc.off('create', this.host.onChange);
    doc.off('del', this.host.onChange);
    doc.off('error', this.host.onDocError);
    // Late errors of a forgotten doc must not throw.
    doc.on('error', () => undefined);
    // Our presence's removal is taken by the server before the handle counts as closed.
    await presenceClosed;
    if (d.wantSubscribe) await unsubscribeWhileOnline(ctx.connection, doc);
    d._wantsDestroy = true;
    connectionInternals(ctx.connection)._destroyDoc(doc);
    this.host.lease()?.release();
    ctx.released(this.host.collection, this.host.id);
    this.host.removeAllListeners();
  }

  /** Rejects `promise` if the handle is closed first. */
  untilClosed(promise: Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onClose = (err: TandemError) => reject(err);
      this.waiters.add(onClose);
      promise.then(
        () => {
          this.waiters.delete(onClose);
          if (this.isClosed) reject(new TandemError(TandemErrorCode.CLOSED, 'document closed while opening'));
          else resolve();
        },
        (err: unknown) => {
          this.waiters.delete(onClose);
          const error = toTandemError(err);
          this.host.emitError(error);
          reject(error);
        },
      );
    });
  }
}
