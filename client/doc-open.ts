import type { Doc } from 'sharedb/lib/client/index.js';
import { JSON1_TYPE_URI } from '../ot-types/index.js';
import { type DocSync, toTandemError } from './doc-sync.js';
import type { DocContext, DocOptions } from './doc-types.js';
import { acquireDocLock, docLockName, type DocLease } from './offline/doc-lock.js';
import { DocOutbox } from './offline/doc-outbox.js';
import type { OutboxRecord } from './offline/outbox-store.js';
import { ShareDbErrorCode, TandemError, TandemErrorCode } from './protocol.js';
import type { SendGate } from './send-gate.js';
import type { DocInternals } from './sharedb-internals.js';

/** The document a handle stands for and the parts every job it lends out works on. */
export interface DocCore {
  readonly collection: string;
  readonly id: string;
  readonly doc: Doc;
  readonly d: DocInternals;
  readonly sync: DocSync;
  readonly gate: SendGate;
  /** The document's outbox once the handle owns it (see DocOpenHost.adopt). */
  outbox(): DocOutbox | null;
}

/** What opening needs from the document handle. */
export interface DocOpenHost extends DocCore {
  readonly ctx: Pick<DocContext, 'outbox' | 'locks' | 'identity' | 'saveDelayMs'>;
  closed(): boolean;
  /** The handle owns the document's outbox (and holds its lock) from now on. */
  adopt(outbox: DocOutbox, lease: DocLease): void;
  report(error: TandemError): void;
  onDocError(err: unknown): void;
  emitChange(): void;
}

/**
 * How a handle gets its first data: from the durable outbox when this tab owns it (usable
 * offline at once, pending ops restored), else from the server, creating the document if
 * asked. Runs once per handle, behind `ready`.
 */
export class DocOpener<T> {
  constructor(private readonly host: DocOpenHost) {}

  async open(options: Pick<DocOptions<T>, 'create'>): Promise<void> {
    const { doc } = this.host;
    const record = await this.takeOutbox();
    if (this.host.closed()) return;
    const outbox = this.host.outbox();
    if (record && outbox) {
      let restored = false;
      try {
        restored = outbox.restore(record);
      } catch (err) {
        this.host.report(
          new TandemError(
            TandemErrorCode.OUTBOX_FAILED,
            `outbox record of ${this.host.collection}/${this.host.id} could not be restored: ${toTandemError(err).message}`,
          ),
        );
      }
      if (restored) {
        // Usable offline now; the subscription catches up once connected. ShareDB sends
        // queued ops when the connection comes up (or on a submit, an ack, a resume), never
        // for ops put in its queue by hand: if the connection came up while the outbox was
        // being read, send them now (first, as ShareDB does on a reconnect).
        this.host.d.flush();
        doc.subscribe((err) => err && this.host.onDocError(err));
        this.host.emitChange();
        return;
      }
    }
    await new Promise<void>((resolve, reject) => doc.subscribe((err) => (err ? reject(toTandemError(err)) : resolve())));
    if (this.host.closed()) return;
    if (!this.host.d.type && options.create !== undefined) await this.create(options.create);
    this.host.outbox()?.changed();
  }

  /** Takes the outbox lock and reads the record; null without an outbox or as a follower. */
  private async takeOutbox(): Promise<OutboxRecord | null> {
    const { ctx, collection, id } = this.host;
    const store = ctx.outbox;
    if (!store) return null;
    const lease = await acquireDocLock(ctx.locks, docLockName(store.name, collection, id));
    if (this.host.closed()) {
      lease?.release();
      return null;
    }
    // Another tab owns this document's outbox: follow it through the server instead.
    if (!lease) return null;
    const outbox = new DocOutbox({
      store,
      key: { collection, id },
      doc: this.host.d,
      sync: this.host.sync,
      gate: this.host.gate,
      identity: ctx.identity,
      saveDelayMs: ctx.saveDelayMs,
      onError: (error) => this.host.report(error),
    });
    this.host.adopt(outbox, lease);
    try {
      return await store.load({ collection, id });
    } catch (err) {
      this.host.report(toTandemError(err));
      return null;
    }
  }

  private create(data: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.host.doc.create(data, JSON1_TYPE_URI, (err) => {
        // Someone created it first: ShareDB has reloaded theirs, which is what we open.
        if (!err || String((err as { code?: unknown }).code) === ShareDbErrorCode.ALREADY_CREATED) resolve();
        else reject(toTandemError(err));
      });
    });
  }
}
