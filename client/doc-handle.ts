import * as json1 from 'ot-json1';
import type { Doc as JsonValue, JSONOp } from 'ot-json1';
import type { Doc } from 'sharedb/lib/client/index.js';
import { checkOpAgainst, JSON1_TYPE_URI, tandemJson1, trialApply, type Json1Presence } from '../ot-types/index.js';
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
import { acquireDocLock, docLockName, type DocLease } from './offline/doc-lock.js';
import { DocOutbox } from './offline/doc-outbox.js';
import type { OutboxRecord } from './offline/outbox-store.js';
import { PresenceHandle } from './presence-handle.js';
import { reexpressQueue, type Reexpressed } from './reexpress.js';
import { ShareDbErrorCode, TandemError, TandemErrorCode } from './protocol.js';
import { SendGate } from './send-gate.js';
import { SendRetry } from './send-retry.js';
import { connectionInternals, docInternals, unsubscribeWhileOnline, type DocInternals, type QueuedOp } from './sharedb-internals.js';
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
  private isClosed = false;
  private closing: Promise<void> | null = null;
  private readonly closeWaiters = new Set<(err: TandemError) => void>();
  private readonly history: UndoManager;
  private readonly onMissingHistory: 'reexpress' | 'stall';
  /** Re-expressing the pending ops against the server's latest snapshot (see reexpress()). */
  private reexpressing = false;

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
    this.doc.on('op', this.onOp);
    this.doc.on('load', this.onChange);
    this.doc.on('create', this.onChange);
    this.doc.on('del', this.onChange);
    this.doc.on('error', this.onDocError);
    this.ready = this.untilClosed(this.open(options));
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
    return this.isClosed;
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
    if (this.isClosed) throw new TandemError(TandemErrorCode.CLOSED, `document ${this.collection}/${this.id} is closed`);
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
      if (this.isClosed) throw new TandemError(TandemErrorCode.CLOSED, 'document closed before it synced');
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
          this.closeWaiters.delete(onClose);
          resolve();
        };
        const onClose = (err: TandemError) => {
          this.doc.off('no write pending', done);
          offStalled();
          reject(err);
        };
        const offStalled = this.on('stalled', done);
        this.doc.on('no write pending', done);
        this.closeWaiters.add(onClose);
      });
    }
  }

  /** After 'stalled': try sending the kept ops again (e.g. once the server's history is back). */
  retry(): void {
    if (this.isClosed || !this.stalledBy) return;
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
    this.forgetLocalState();
    this.stalledBy = null;
    this.retries.forget();
    this.gate.release('stalled');
    this.emit('change');
    this.reload();
    await this.outbox?.forget();
    return dropped;
  }

  /**
   * Drops the unacknowledged ops and what the document was based on, so the next load takes
   * the server's snapshot whole (discardPending, reexpress). Nothing is saved to the outbox
   * while the version is unknown.
   */
  private forgetLocalState(): void {
    this.d.inflightOp = null;
    this.d.pendingOps = [];
    this.d.version = null;
    this.d._setType(null);
    this.sync.confirmed = undefined;
    this.history.clear();
  }

  /**
   * Subscribes from version null: the server sends its whole snapshot, no history needed.
   * `loaded` runs once the document is at the server's version again.
   */
  private reload(loaded?: () => void): void {
    // A subscribe still in flight (for the old version) absorbs a new request; join it,
    // then ask again if it did not load the document.
    this.doc.subscribe((err) => {
      if (this.isClosed) return;
      if (this.d.version !== null && this.d.subscribed) return loaded?.();
      if (err && !isMissingHistory(toTandemError(err).code)) {
        this.onDocError(err);
        return;
      }
      this.doc.subscribe((again) => {
        if (again) this.onDocError(again);
        else if (!this.isClosed) loaded?.();
      });
    });
  }

  /**
   * The server no longer has the history our unacknowledged ops were written against (they
   * would stall). Starts over from its latest snapshot and sends our ops re-expressed against
   * it (client/reexpress.ts): what changed since our base snapshot stands in for the lost
   * ops, so text typed here merges with what others typed. An op of which nothing remains
   * (its target was removed) is reported through 'rejected'. The outbox keeps its record
   * until the re-expressed ops replace it (nothing is saved while the version is unknown), so
   * a crash meanwhile re-expresses again after the restart. False (the document stalls
   * instead) when a create or a delete is pending, or the base snapshot is unknown.
   */
  private reexpress(error: TandemError): boolean {
    let queue = this.d.inflightOp ? [this.d.inflightOp, ...this.d.pendingOps] : [...this.d.pendingOps];
    let base = this.sync.confirmed;
    if (base === undefined || queue.some((q) => q.create || q.del || q.op === undefined)) return false;
    // The server says the op it answered (the first of the queue: DocSync puts a kept op in
    // flight back at the head) was committed long ago: it is part of the base, and only the
    // ops after it are re-expressed (it must not apply twice).
    if (error.code === TandemErrorCode.ALREADY_COMMITTED && queue[0]?.op !== undefined) {
      try {
        base = json1.type.apply(base as JsonValue, queue[0].op);
      } catch {
        return false;
      }
      queue = queue.slice(1);
    }
    const ops = queue.map((q) => q.op as JSONOp);
    this.reexpressing = true;
    this.gate.hold('stalled');
    this.forgetLocalState();
    this.reload(() => {
      this.reexpressing = false;
      this.gate.release('stalled');
      const gone = (op: JSONOp, why: string) => {
        const error = new TandemError(TandemErrorCode.OP_DISCARDED, `an edit made offline could not be re-expressed: ${why}`);
        this.reportRejection({ code: error.code, message: error.message, op, error });
      };
      if (ops.length === 0) return;
      if (!this.d.type) {
        for (const op of ops) gone(op, 'the document was deleted meanwhile');
        return;
      }
      let moved: Reexpressed[];
      try {
        moved = reexpressQueue(tandemJson1, base, this.d.data as JsonValue, ops);
      } catch (err) {
        for (const op of ops) gone(op, `json1 could not transform it (${(err as Error).message})`);
        return;
      }
      moved.forEach(({ op, partial }, i) => {
        if (op === null) return gone(ops[i]!, 'what it changed was removed or replaced meanwhile');
        // The rest of it is sent; the app learns which edit lost a part.
        if (partial) gone(ops[i]!, 'part of it changed something removed or replaced meanwhile; the rest was sent');
        try {
          this.submitLocal(op);
        } catch (err) {
          gone(ops[i]!, (err as Error).message);
        }
      });
    });
    return true;
  }

  /** Cursors and selections on this document (one local presence per handle). */
  presence<P extends Json1Presence = Json1Presence>(): PresenceHandle<P> {
    if (this.isClosed) throw new TandemError(TandemErrorCode.CLOSED, `document ${this.collection}/${this.id} is closed`);
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
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.isClosed = true;
    this.history.clear();
    this.retries.cancel();
    const closedError = new TandemError(TandemErrorCode.CLOSED, `document ${this.collection}/${this.id} was closed`);
    for (const reject of [...this.closeWaiters]) reject(closedError);
    this.closeWaiters.clear();
    const presenceClosed = this.presenceHandle?.close();
    this.gate.hold('closed');
    await this.outbox?.close();
    this.sync.detach();
    this.doc.off('op', this.onOp);
    this.doc.off('load', this.onChange);
    this.doc.off('create', this.onChange);
    this.doc.off('del', this.onChange);
    this.doc.off('error', this.onDocError);
    // Late errors of a forgotten doc must not throw.
    this.doc.on('error', () => undefined);
    // Our presence's removal is taken by the server before the handle counts as closed.
    await presenceClosed;
    if (this.d.wantSubscribe) await unsubscribeWhileOnline(this.ctx.connection, this.doc);
    this.d._wantsDestroy = true;
    connectionInternals(this.ctx.connection)._destroyDoc(this.doc);
    this.lease?.release();
    this.ctx.released(this.collection, this.id);
    this.removeAllListeners();
  }

  private async open(options: DocOptions<T>): Promise<void> {
    const record = await this.takeOutbox();
    if (this.isClosed) return;
    if (record && this.outbox) {
      let restored = false;
      try {
        restored = this.outbox.restore(record);
      } catch (err) {
        this.report(
          new TandemError(
            TandemErrorCode.OUTBOX_FAILED,
            `outbox record of ${this.collection}/${this.id} could not be restored: ${toTandemError(err).message}`,
          ),
        );
      }
      if (restored) {
        // Usable offline now; the subscription catches up once connected. ShareDB sends
        // queued ops when the connection comes up (or on a submit, an ack, a resume), never
        // for ops put in its queue by hand: if the connection came up while the outbox was
        // being read, send them now (first, as ShareDB does on a reconnect).
        this.d.flush();
        this.doc.subscribe((err) => err && this.onDocError(err));
        this.emit('change');
        return;
      }
    }
    await new Promise<void>((resolve, reject) => this.doc.subscribe((err) => (err ? reject(toTandemError(err)) : resolve())));
    if (this.isClosed) return;
    if (!this.d.type && options.create !== undefined) await this.create(options.create);
    this.outbox?.changed();
  }

  /** Takes the outbox lock and reads the record; null without an outbox or as a follower. */
  private async takeOutbox(): Promise<OutboxRecord | null> {
    const store = this.ctx.outbox;
    if (!store) return null;
    const lease = await acquireDocLock(this.ctx.locks, docLockName(store.name, this.collection, this.id));
    if (this.isClosed) {
      lease?.release();
      return null;
    }
    // Another tab owns this document's outbox: follow it through the server instead.
    if (!lease) return null;
    this.lease = lease;
    this.outbox = new DocOutbox({
      store,
      key: { collection: this.collection, id: this.id },
      doc: this.d,
      sync: this.sync,
      gate: this.gate,
      identity: this.ctx.identity,
      saveDelayMs: this.ctx.saveDelayMs,
      onError: (error) => this.report(error),
    });
    try {
      return await store.load({ collection: this.collection, id: this.id });
    } catch (err) {
      this.report(toTandemError(err));
      return null;
    }
  }

  private create(data: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.doc.create(data, JSON1_TYPE_URI, (err) => {
        // Someone created it first: ShareDB has reloaded theirs, which is what we open.
        if (!err || String((err as { code?: unknown }).code) === ShareDbErrorCode.ALREADY_CREATED) resolve();
        else reject(toTandemError(err));
      });
    });
  }

  /** Rejects `promise` if the handle is closed first. */
  private untilClosed(promise: Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onClose = (err: TandemError) => reject(err);
      this.closeWaiters.add(onClose);
      promise.then(
        () => {
          this.closeWaiters.delete(onClose);
          if (this.isClosed) reject(new TandemError(TandemErrorCode.CLOSED, 'document closed while opening'));
          else resolve();
        },
        (err: unknown) => {
          this.closeWaiters.delete(onClose);
          const error = toTandemError(err);
          this.emit('error', error);
          reject(error);
        },
      );
    });
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
    if (isMissingHistory(error.code) && (this.reexpressing || this.d.version === null)) return;
    // The resubscription failed, but the op in flight has its own answer coming (it is resent
    // first on a reconnect): that answer says whether it was committed long ago
    // (TANDEM_ALREADY_COMMITTED), which decides what is re-expressed. Wait for it.
    if (isMissingHistory(error.code) && this.d.inflightOp && this.ctx.connection.state === 'connected') return;
    if (isMissingHistory(error.code) && this.d.hasWritePending()) this.stall(error);
    else this.report(error);
  };

  private stall(error: TandemError): void {
    if (this.reexpressing) return;
    if (this.onMissingHistory === 'reexpress' && this.reexpress(error)) return;
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
