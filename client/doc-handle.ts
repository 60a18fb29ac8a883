import * as json1 from 'ot-json1';
import type { Doc as JsonValue, JSONOp } from 'ot-json1';
import type { Doc } from 'sharedb/lib/client/index.js';
import { checkOpAgainst, trialApply, type Json1Presence } from '../ot-types/index.js';
import { DocCloser, type DocCloseHost } from './doc-close.js';
import { DocOpener, type DocOpenHost } from './doc-open.js';
import { DocReexpresser, type DocReexpressHost } from './doc-reexpress.js';
import { forgetLocalState, reload } from './doc-reload.js';
import type {
  DeepReadonly,
  DocContext,
  DocEvents as BaseDocEvents,
  DocOptions as BaseDocOptions,
  OpMeta,
  OpRejection,
} from './doc-types.js';
import { DocSync, isMissingHistory, toTandemError } from './doc-sync.js';
import { Emitter } from './emitter.js';
import type { DocLease } from './offline/doc-lock.js';
import type { DocOutbox } from './offline/doc-outbox.js';
import { PresenceHandle } from './presence-handle.js';
import { TandemError, TandemErrorCode } from './protocol.js';
import { SendGate } from './send-gate.js';
import { SendRetry } from './send-retry.js';
import { docInternals, type DocInternals, type QueuedOp } from './sharedb-internals.js';
import {
  UndoManager,
  type HistoryDocOptions,
  type HistoryEvents,
  type SubmitOptions,
  type UndoOptions,
  type UndoState,
} from './undo-manager.js';

export type { DeepReadonly, DocContext, OpMeta, OpRejection, SubmitOptions, UndoOptions, UndoState };
export type DocOptions<T> = BaseDocOptions<T> & HistoryDocOptions;
export type DocEvents = BaseDocEvents & HistoryEvents;

/**
 * A typed handle on one json1 document: its data and version, local edits that survive
 * restarts (with an outbox), and events. Get one with `client.doc(collection, id)`.
 */
export class DocHandle<T = JsonValue> extends Emitter<DocEvents> {
  /** Resolves once `data` is known: restored from the outbox, or loaded from the server. */
  readonly ready: Promise<void>;
  private readonly doc: Doc;
  private readonly d: DocInternals;
  private readonly sync: DocSync;
  private readonly gate: SendGate;
  private outbox: DocOutbox | null = null;
  private lease: DocLease | null = null;
  private stalledBy: TandemError | null = null;
  private presenceHandle: PresenceHandle | null = null;
  private readonly retries: SendRetry;
  private readonly history: UndoManager;
  private readonly onMissingHistory: 'reexpress' | 'stall';
  /** Lent to the parts in files of their own (doc-open, doc-close, doc-reexpress, doc-reload); each sees only its host interface. */
  private readonly parts: DocOpenHost & DocCloseHost & DocReexpressHost;
  private readonly closer: DocCloser;
  private readonly reexpresser: DocReexpresser;

  /** @internal Use `client.doc()`. */
  constructor(
    private readonly ctx: DocContext,
    readonly collection: string,
    readonly id: string,
    options: DocOptions<T> = {},
  ) {
    super();
    this.doc = ctx.connection.get(collection, id);
    this.d = docInternals(this.doc);
    if (options.composeOps === false) this.d.preventCompose = true;
    this.onMissingHistory = options.onMissingHistory ?? 'reexpress';
    this.gate = new SendGate(this.d);
    this.retries = new SendRetry({
      ctx,
      gate: this.gate,
      head: () => this.d.pendingOps[0],
      stall: (error) => this.stall(error),
      report: (error) => this.report(error),
    });
    this.history = new UndoManager(
      {
        data: () => this.d.data as JsonValue | undefined,
        submit: (op) => this.submitLocal(op),
        report: (error) => this.report(error),
        changed: (state) => this.emit('history', state),
      },
      options.undo,
    );
    this.sync = new DocSync(this.doc, {
      changed: () => this.outbox?.changed(),
      rejected: (error, op) => this.reportRejection({ code: error.code, message: error.message, op, error }),
      kept: (error, kind, retryAfterMs) => {
        if (kind === 'keep') this.stall(error);
        else if (kind === 'reauth') this.retries.awaitToken();
        else if (kind === 'throttled') this.retries.waitForBudget(retryAfterMs);
        else this.retries.backOff(error);
      },
      discarded: (queued, error) => this.reportDiscarded(queued, error),
      // A change without an op: listeners (and the bindings) re-read `data` wholesale. The
      // history's ops no longer describe the data.
      reset: () => {
        this.history.clear();
        this.emit('change');
      },
    });
    this.parts = {
      ctx,
      collection,
      id,
      doc: this.doc,
      d: this.d,
      sync: this.sync,
      gate: this.gate,
      history: this.history,
      retries: this.retries,
      closed: () => this.closer.closed,
      outbox: () => this.outbox,
      lease: () => this.lease,
      presence: () => this.presenceHandle,
      adopt: (outbox, lease) => {
        this.outbox = outbox;
        this.lease = lease;
      },
      onOp: this.onOp,
      onChange: this.onChange,
      onDocError: this.onDocError,
      report: (error) => this.report(error),
      reportRejection: (rejection) => this.reportRejection(rejection),
      submitLocal: (op) => this.submitLocal(op),
      emitChange: () => this.emit('change'),
      emitError: (error) => this.emit('error', error),
      removeAllListeners: () => this.removeAllListeners(),
    };
    this.closer = new DocCloser(this.parts);
    this.reexpresser = new DocReexpresser(this.parts);
    this.doc.on('op', this.onOp);
    this.doc.on('load', this.onChange);
    this.doc.on('create', this.onChange);
    this.doc.on('del', this.onChange);
    this.doc.on('error', this.onDocError);
    this.ready = this.closer.untilClosed(new DocOpener<T>(this.parts).open(options));
    // Failures also go to 'error' listeners; a caller that never awaits `ready` must not
    // get an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  /** The document's data (your edits included); undefined until ready or if it does not exist. */
  get data(): DeepReadonly<T> | undefined {
    // ShareDB's data is untyped; T is the caller's declared shape of this document.
    return this.d.data as DeepReadonly<T> | undefined;
  }

  /** Server version the data is based on (null until loaded). */
  get version(): number | null {
    return this.d.version;
  }

  get exists(): boolean {
    return this.d.type !== null;
  }

  /** Unacknowledged op batches (composed ops count once), including one in flight. */
  get pendingCount(): number {
    return (this.d.inflightOp ? 1 : 0) + this.d.pendingOps.length;
  }

  /** True when this handle owns the document's outbox (edits survive a restart). */
  get durable(): boolean {
    return this.outbox !== null;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.closer.closed;
  }

  /** Why sending stopped, when the server cannot rebase our pending ops; else null. */
  get stalled(): TandemError | null {
    return this.stalledBy;
  }

  /**
   * Applies a json1 op locally now and queues it for the server (build ops with `ops` from
   * ot-types). Throws a TandemError for an op that is invalid or does not fit the data;
   * the server's refusals arrive later as 'rejected' events. `undo()` can revert it unless
   * `options.undoable` is false.
   */
  submit(op: JSONOp, options: SubmitOptions = {}): void {
    const before = this.d.data as JsonValue | undefined;
    if (!this.submitLocal(op)) return;
    if (options.undoable === false) this.history.carry(op);
    else this.history.record(op, before);
  }

  /** True when `undo()` has a step of this client's edits to revert ('history' event on change). */
  get canUndo(): boolean {
    return this.history.canUndo;
  }

  get canRedo(): boolean {
    return this.history.canRedo;
  }

  /**
   * Reverts this client's latest group of edits (pending ones too) and nothing of anyone
   * else's, submitted like any edit. False when there is nothing to undo, or when the step
   * no longer fits the document (dropped, and reported as an 'error'). See undo-manager.ts.
   */
  undo(): boolean {
    return this.history.undo();
  }

  /** Reapplies what the latest `undo()` reverted; false when there is nothing to redo. */
  redo(): boolean {
    return this.history.redo();
  }

  /** Forgets the undo and redo history (also cleared whenever the data is reloaded). */
  clearHistory(): void {
    this.history.clear();
  }

  /** Checks, applies and queues a local op; false for a no-op (nothing sent). */
  private submitLocal(op: JSONOp): boolean {
    if (this.closer.closed) throw new TandemError(TandemErrorCode.CLOSED, `document ${this.collection}/${this.id} is closed`);
    if (!this.d.type) {
      throw new TandemError(TandemErrorCode.DOC_NOT_READY, `document ${this.collection}/${this.id} is not loaded or does not exist`);
    }
    try {
      json1.type.checkValidOp(op);
    } catch (err) {
      throw new TandemError(TandemErrorCode.INVALID_OP, `not a json1 op: ${(err as Error).message}`);
    }
    // json1 would apply a text delete of other text, or fail deep in a subtype on a typo'd
    // path: say where and why instead.
    const mismatch = checkOpAgainst(this.d.data as JsonValue, op);
    if (mismatch) {
      throw new TandemError(
        TandemErrorCode.INVALID_OP,
        `op does not fit ${this.collection}/${this.id} at ${JSON.stringify(mismatch.path)}: ${mismatch.reason}`,
      );
    }
    try {
      // The data stays as it is; ShareDB applies the op for real below.
      trialApply(() => json1.type.apply(this.d.data as JsonValue, op));
    } catch (err) {
      throw new TandemError(TandemErrorCode.INVALID_OP, `op does not apply to ${this.collection}/${this.id}: ${(err as Error).message}`);
    }
    // A no-op would still cost a version, a commit and a broadcast to every subscriber.
    if (json1.type.isNoop(op)) return false;
    this.outbox?.beforeLocalOp();
    this.doc.submitOp(op);
    this.outbox?.afterLocalOp();
    return true;
  }

  /** Resolves once every edit so far is in the durable outbox (at once without one). */
  whenSaved(): Promise<void> {
    return this.outbox ? this.outbox.whenSaved() : Promise.resolve();
  }

  /** Resolves once the server acknowledged every edit so far (and it is saved); rejects if stalled. */
  async whenSynced(): Promise<void> {
    for (;;) {
      if (this.closer.closed) throw new TandemError(TandemErrorCode.CLOSED, 'document closed before it synced');
      if (this.stalledBy) throw this.stalledBy;
      if (!this.d.hasWritePending()) {
        await this.whenSaved();
        if (!this.d.hasWritePending()) return;
        continue;
      }
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          this.doc.off('no write pending', done);
          offStalled();
          this.closer.waiters.delete(onClose);
          resolve();
        };
        const onClose = (err: TandemError) => {
          this.doc.off('no write pending', done);
          offStalled();
          reject(err);
        };
        const offStalled = this.on('stalled', done);
        this.doc.on('no write pending', done);
        this.closer.waiters.add(onClose);
      });
    }
  }

  /** After 'stalled': try sending the kept ops again (e.g. once the server's history is back). */
  retry(): void {
    if (this.closer.closed || !this.stalledBy) return;
    this.stalledBy = null;
    this.retries.resetAttempts();
    this.gate.release('stalled');
    if (!this.d.subscribed && this.d.wantSubscribe) this.doc.subscribe((err) => err && this.onDocError(err));
  }

  /**
   * Gives up the unacknowledged ops (returned, for the app to salvage) and reloads the
   * document from the server's latest snapshot. Meant for a stalled document: an op
   * already in flight may still be committed.
   */
  async discardPending(): Promise<JSONOp[]> {
    const queue = this.d.inflightOp ? [this.d.inflightOp, ...this.d.pendingOps] : [...this.d.pendingOps];
    const dropped = queue.flatMap((q) => (q.op !== undefined ? [q.op] : []));
    forgetLocalState(this.parts);
    this.stalledBy = null;
    this.retries.forget();
    this.gate.release('stalled');
    this.emit('change');
    reload(this.parts);
    await this.outbox?.forget();
    return dropped;
  }

  /** Cursors and selections on this document (one local presence per handle). */
  presence<P extends Json1Presence = Json1Presence>(): PresenceHandle<P> {
    if (this.closer.closed) throw new TandemError(TandemErrorCode.CLOSED, `document ${this.collection}/${this.id} is closed`);
    this.presenceHandle ??= new PresenceHandle(
      this.ctx.connection,
      this.collection,
      this.id,
      this.ctx.randomId(),
      this.ctx.watchConnection,
    );
    // One presence per document handle; P only narrows what the caller submits and reads.
    return this.presenceHandle as unknown as PresenceHandle<P>;
  }

  /** Saves what is unsaved and lets go of the document; pending ops stay in the outbox. */
  close(): Promise<void> {
    return this.closer.close();
  }

  private readonly onOp = (op: JSONOp, source: unknown): void => {
    const meta: OpMeta = { source: this.sync.inRollback ? 'rollback' : source ? 'local' : 'remote' };
    // Our own edits are recorded by submit(); remote ones move the history past them. A
    // rollback would cancel a refused edit inside a step only for some ops (not for a number
    // add or re-inserted text), so the history is forgotten instead.
    if (meta.source === 'remote') this.history.carry(op);
    else if (meta.source === 'rollback') this.history.clear();
    this.emit('op', op, meta);
    this.emit('change');
  };

  /** Load, create or delete: the data was replaced, and the history with it. */
  private readonly onChange = (): void => {
    this.history.clear();
    this.emit('change');
  };

  private readonly onDocError = (err: unknown): void => {
    if (this.sync.wasHandled(err)) return;
    const error = toTandemError(err);
    // The old subscription's answer, arriving while the document reloads from the latest snapshot.
    if (isMissingHistory(error.code) && (this.reexpresser.active || this.d.version === null)) return;
    // The resubscription failed, but the op in flight has its own answer coming (it is resent
    // first on a reconnect): that answer says whether it was committed long ago
    // (TANDEM_ALREADY_COMMITTED), which decides what is re-expressed. Wait for it.
    if (isMissingHistory(error.code) && this.d.inflightOp && this.ctx.connection.state === 'connected') return;
    if (isMissingHistory(error.code) && this.d.hasWritePending()) this.stall(error);
    else this.report(error);
  };

  private stall(error: TandemError): void {
    if (this.reexpresser.active) return;
    if (this.onMissingHistory === 'reexpress' && this.reexpresser.reexpress(error)) return;
    const first = this.stalledBy === null;
    this.stalledBy = error;
    this.gate.hold('stalled');
    this.outbox?.changed();
    if (first && !this.emit('stalled', error)) this.report(error);
  }

  /** @internal The client learned its source id (first token): ops made before can be saved. */
  identityReady(): void {
    this.outbox?.identityReady();
  }

  private reportRejection(rejection: OpRejection): void {
    // Rolled back, or dropped by a reload: the history no longer matches the data.
    this.history.clear();
    if (!this.emit('rejected', rejection)) this.report(rejection.error);
  }

  private reportDiscarded(queued: QueuedOp[], error: TandemError): void {
    for (const q of queued) this.reportRejection({ code: error.code, message: error.message, op: q.op ?? null, error });
  }

  /** 'error' event, or the console when nobody listens: errors are never silently dropped. */
  private report(error: TandemError): void {
    if (!this.emit('error', error)) console.warn(`Tandem ${this.collection}/${this.id}: ${error.code}: ${error.message}`);
  }
}
