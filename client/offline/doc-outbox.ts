/**
 * Binds one ShareDB Doc to its outbox record: restores it after a restart, and saves it
 * whenever it changes — before any new local op may be sent (write-ahead).
 */
import * as json1 from 'ot-json1';
import type { Doc as JsonValue } from 'ot-json1';
import { JSON1_TYPE_NAME, JSON1_TYPE_URI } from '../../ot-types/index.js';
import type { DocSync } from '../doc-sync.js';
import { toTandemError } from '../doc-sync.js';
import { TandemError, TandemErrorCode } from '../protocol.js';
import type { SendGate } from '../send-gate.js';
import type { DocInternals, QueuedOp } from '../sharedb-internals.js';
import type { DocKey, OutboxOp, OutboxRecord, OutboxStore } from './outbox-store.js';

export interface DocOutboxOptions {
  store: OutboxStore;
  key: DocKey;
  doc: DocInternals;
  sync: DocSync;
  gate: SendGate;
  /** Identity for new ops: this client's src (null until known) and the next seq of its connection. */
  identity: { src(): string | null; nextSeq(): number };
  /** Delay before saving changes that do not hold an op back (acks, remote ops). */
  saveDelayMs: number;
  onError(error: TandemError): void;
}

const MAX_RETRY_DELAY_MS = 30_000;

export class DocOutbox {
  /** Bumped per local op; ops may be sent once `savedRevision` catches up with it. */
  private localRevision = 0;
  private savedRevision = 0;
  /** Something changed since the last save started. */
  private dirty = false;
  /** The record must be deleted before the next save (the app discarded the pending ops). */
  private forgetting = false;
  private running = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private closed = false;
  /** The last capture left out ops that have no identity yet: they must not be sent. */
  private unidentified = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly o: DocOutboxOptions) {}

  /**
   * Loads the doc from a saved record: version, type, the server snapshot, and the pending
   * ops with their original src/seq, re-applied to show the local view. Returns false when
   * the record is not usable (another type), leaving the doc untouched.
   */
  restore(record: OutboxRecord): boolean {
    if (record.type !== JSON1_TYPE_URI && record.type !== JSON1_TYPE_NAME) return false;
    const queue: QueuedOp[] = [];
    let data: JsonValue | undefined = record.snapshot;
    let deleted = false;
    for (const p of record.pending) {
      // sentAt: the op may have reached the server before the restart, so ShareDB must
      // never compose a new op into it (that would change what this src/seq means).
      const q: QueuedOp = { src: p.src, seq: p.seq, source: true, callbacks: [], sentAt: record.savedAt || 1 };
      if (p.del) {
        q.del = true;
        deleted = true;
      } else if (p.op !== undefined) {
        q.op = p.op;
        data = json1.type.apply(data as JsonValue, p.op) as JsonValue;
      }
      queue.push(q);
    }
    const doc = this.o.doc;
    doc.version = record.version;
    doc._setType(record.type);
    for (const q of queue) q.type = doc.type;
    this.o.sync.confirmed = record.snapshot;
    doc._setData(data);
    if (deleted) doc._setType(null);
    doc.pendingOps = queue;
    return true;
  }

  /** Call before handing a local op to ShareDB: it must not be sent until saved. */
  beforeLocalOp(): void {
    this.o.gate.hold('unsaved');
  }

  /** Call after ShareDB queued a local op: gives it its identity and saves it now. */
  afterLocalOp(): void {
    const pending = this.o.doc.pendingOps;
    const last = pending[pending.length - 1];
    // A composed op keeps the identity of the op it was composed into.
    if (last) this.identify(last);
    this.localRevision++;
    this.request(true);
  }

  /** Version, snapshot or queue changed without a new local op: save soon. */
  changed(): void {
    this.request(false);
  }

  /**
   * Deletes the record, in turn with the saves (a save already under way must not bring
   * discarded ops back). The next change saves a fresh record.
   */
  forget(): Promise<void> {
    this.forgetting = true;
    this.request(true);
    return this.whenSaved();
  }

  /** Resolves once everything up to now is saved (or the save failed and was reported). */
  whenSaved(): Promise<void> {
    if (!this.dirty && !this.running && this.timer === null) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Saves what is unsaved, then stops. The record stays for the next run. */
  async close(): Promise<void> {
    if (this.timer !== null && !this.running) {
      clearTimeout(this.timer);
      this.timer = null;
      void this.run();
    }
    await this.whenSaved();
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The client's source id became known: save (and so release) ops that waited for it. */
  identityReady(): void {
    if (this.unidentified) this.request(true);
  }

  /** Gives a queued op its src/seq; false while the client's source id is not known yet. */
  private identify(q: QueuedOp): boolean {
    if (q.seq != null) return true;
    const src = this.o.identity.src();
    if (src === null) return false;
    q.src = src;
    q.seq = this.o.identity.nextSeq();
    return true;
  }

  private request(urgent: boolean): void {
    if (this.closed) return;
    this.dirty = true;
    if (this.running) return;
    if (urgent) {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      void this.run();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.run();
      }, this.o.saveDelayMs);
    }
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.dirty && !this.closed) {
        this.dirty = false;
        const revision = this.localRevision;
        if (this.forgetting) {
          await this.o.store.remove(this.o.key);
          // Cleared only once done: a failed remove is retried with the next save.
          this.forgetting = false;
        }
        const record = this.capture();
        if (record) await this.o.store.save(record);
        this.failures = 0;
        this.savedRevision = revision;
        if (this.savedRevision === this.localRevision && !this.unidentified) this.o.gate.release('unsaved');
      }
    } catch (err) {
      this.failures++;
      this.o.onError(
        new TandemError(
          TandemErrorCode.OUTBOX_FAILED,
          `saving ${this.o.key.collection}/${this.o.key.id} failed: ${toTandemError(err).message}`,
        ),
      );
      // Degrade rather than block: an op sent without its saved identity cannot be resent
      // after a restart, but it cannot be duplicated either. Keep trying to save.
      this.o.gate.release('unsaved');
      this.dirty = true;
      if (!this.closed) {
        const delay = Math.min(MAX_RETRY_DELAY_MS, 250 * 2 ** Math.min(this.failures, 10));
        this.timer = setTimeout(() => {
          this.timer = null;
          void this.run();
        }, delay);
      }
    } finally {
      this.running = false;
      // After a failure, waiters learn of it through onError rather than waiting forever.
      if (this.failures > 0 || this.closed || (!this.dirty && this.timer === null)) this.wakeIdle();
    }
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** The doc's state as one consistent record, taken synchronously between ShareDB events. */
  private capture(): OutboxRecord | null {
    const doc = this.o.doc;
    const snapshot = this.o.sync.confirmed;
    if (doc.version === null || !doc.type || snapshot === undefined) return null;
    const queue = doc.inflightOp ? [doc.inflightOp, ...doc.pendingOps] : doc.pendingOps;
    const pending: OutboxOp[] = [];
    this.unidentified = false;
    for (const q of queue) {
      // A create is not yet on the server: there is nothing to resume from after a restart.
      if (q.create) return null;
      if (!this.identify(q)) {
        // Before the first token names the user: saved (and sent) once it does.
        this.unidentified = true;
        break;
      }
      // ShareDB sets src right after sending an op it numbered itself; ours is that src.
      const src = q.src ?? (this.o.identity.src() as string);
      const seq = q.seq as number;
      if (q.del) pending.push({ src, seq, del: true });
      else if (q.op !== undefined) pending.push({ src, seq, op: q.op });
    }
    const { collection, id } = this.o.key;
    return { collection, id, version: doc.version, type: doc.type.uri, snapshot, pending, savedAt: Date.now() };
  }
}
