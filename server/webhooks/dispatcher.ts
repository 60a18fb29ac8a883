/**
 * Webhooks (WEBHOOK_URLS): every committed op reaches every configured URL, at least once,
 * as a signed JSON POST, without slowing commits.
 *
 * - A commit only marks its document for each target (and, the first time this process sees
 *   the document, makes sure the target has a cursor for it: see cursors.ts). Deliveries run
 *   on a timer, every WEBHOOK_BATCH_MS, outside the submit path.
 * - One delivery is one document's ops from the target's cursor on, at most WEBHOOK_MAX_OPS,
 *   read from the op log: `{deliveryId, collection, id, from, to, ops: [{v, src, seq, time,
 *   user, op | create | del}]}`. A 2xx answer moves the cursor to `to`; anything else (or no
 *   answer within WEBHOOK_TIMEOUT_MS) leaves it, and the same range is sent again, with the
 *   same `tandem-delivery` id, after a backoff (WEBHOOK_RETRY_MS, doubled per failure up to a
 *   minute) per target.
 *   Receivers de-duplicate by that id (or by collection, id and op version).
 * - After a restart the documents whose cursor is behind their version are delivered first.
 * - Several instances each deliver what they committed; a cursor only moves forward, so an
 *   overlap is a duplicate delivery, never a gap.
 */
import type ShareDB from 'sharedb';
import { TandemErrorCode } from '../../client/protocol.js';
import type { TandemBackend } from '../backend.js';
import type { WebhookConfig } from '../config.js';
import type { Logger } from '../ops/logger.js';
import type { WebhookCursors } from './cursors.js';
import { signWebhook } from './signature.js';

/** Deliveries one target has in flight at once (different documents). */
const CONCURRENCY = 4;
const MAX_BACKOFF_MS = 60_000;

export interface WebhookStats {
  delivered: number;
  opsDelivered: number;
  failed: number;
  /** Documents with ops not yet delivered, summed over targets. */
  backlog(): number;
}

interface StoredOp {
  v: number;
  src?: string;
  seq?: number;
  op?: unknown;
  create?: unknown;
  del?: boolean;
  m?: { ts?: number; user?: string };
}

type DocKey = string;

function docKey(collection: string, id: string): DocKey {
  return JSON.stringify([collection, id]);
}

function parseKey(key: DocKey): [string, string] {
  return JSON.parse(key) as [string, string];
}

class Target {
  /** Documents with (possibly) undelivered ops. */
  readonly dirty = new Set<DocKey>();
  /** Next version to deliver, per document this process knows a cursor for. */
  readonly cursor = new Map<DocKey, number>();
  readonly sending = new Set<DocKey>();
  /** The end of a range whose delivery failed: it is sent again as it was (same delivery id). */
  readonly retryTo = new Map<DocKey, number>();
  failures = 0;
  notBefore = 0;

  constructor(readonly url: string) {}
}

export class WebhookDispatcher {
  readonly stats: WebhookStats;
  private readonly targets: Target[];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly config: WebhookConfig,
    private readonly db: ShareDB.DB,
    private readonly cursors: WebhookCursors,
    private readonly logger: Logger,
  ) {
    this.targets = config.urls.map((url) => new Target(url));
    this.stats = {
      delivered: 0,
      opsDelivered: 0,
      failed: 0,
      backlog: () => this.targets.reduce((n, t) => n + t.dirty.size, 0),
    };
  }

  /** Marks committed ops (the backend's 'afterWrite'); delays the ack only for a document's first cursor. */
  watch(backend: TandemBackend): void {
    backend.use('afterWrite', (context, next) => {
      const request = context as unknown as { collection: string; id: string; op: { v?: number } };
      const v = request.op.v;
      if (typeof v !== 'number') return next();
      let pending: Promise<void>[] = [];
      try {
        pending = this.noteCommit(request.collection, request.id, v);
      } catch (err) {
        return next(err);
      }
      if (pending.length === 0) return next();
      Promise.all(pending).then(
        () => next(),
        (err: unknown) => next(err),
      );
    });
  }

  private noteCommit(collection: string, id: string, v: number): Promise<void>[] {
    const key = docKey(collection, id);
    const pending: Promise<void>[] = [];
    for (const target of this.targets) {
      target.dirty.add(key);
      if (target.cursor.has(key)) continue;
      target.cursor.set(key, v);
      const written = this.cursors.ensure(target.url, collection, id, v);
      if (written) pending.push(written);
    }
    return pending;
  }

  /** Loads what earlier runs left undelivered, then delivers every WEBHOOK_BATCH_MS. */
  async start(): Promise<void> {
    for (const target of this.targets) {
      try {
        for (const { collection, id, v } of await this.cursors.backlog(target.url)) {
          const key = docKey(collection, id);
          target.cursor.set(key, v);
          target.dirty.add(key);
        }
      } catch (err) {
        // The store may come up later; what is behind is found again at the next start.
        this.logger.warn({ url: target.url, err: (err as Error).message }, 'webhook: backlog not loaded');
      }
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => this.pump(), Math.max(this.config.batchMs, 10));
    this.timer.unref();
  }

  private pump(): void {
    const now = Date.now();
    for (const target of this.targets) {
      if (now < target.notBefore) continue;
      for (const key of target.dirty) {
        if (target.sending.size >= CONCURRENCY) break;
        if (target.sending.has(key)) continue;
        target.sending.add(key);
        const delivery = this.deliver(target, key).finally(() => {
          target.sending.delete(key);
          this.inFlight.delete(delivery);
        });
        this.inFlight.add(delivery);
      }
    }
    this.schedule();
  }

  private readOps(collection: string, id: string, from: number, to: number): Promise<StoredOp[]> {
    return new Promise((resolve, reject) =>
      this.db.getOps(collection, id, from, to, { metadata: true }, (err, ops) =>
        err ? reject(err) : resolve(ops as unknown as StoredOp[]),
      ),
    );
  }

  private async deliver(target: Target, key: DocKey): Promise<void> {
    const [collection, id] = parseKey(key);
    const from = target.cursor.get(key);
    if (from === undefined) {
      target.dirty.delete(key);
      return;
    }
    let ops: StoredOp[];
    try {
      ops = await this.readOps(collection, id, from, target.retryTo.get(key) ?? from + this.config.maxOps);
    } catch (err) {
      if ((err as { code?: unknown }).code === TandemErrorCode.MISSING_OPS) {
        this.logger.error(
          { collection, id, from, url: target.url },
          'webhook: ops to deliver are missing from the op log (a restored backup?); retried',
        );
      }
      return this.failed(target, err);
    }
    if (ops.length === 0) {
      target.dirty.delete(key);
      return;
    }
    const to = ops[ops.length - 1]!.v + 1;
    const deliveryId = `${encodeURIComponent(collection)}/${encodeURIComponent(id)}/${from}-${to}`;
    const body = JSON.stringify({
      deliveryId,
      collection,
      id,
      from,
      to,
      ops: ops.map((op) => ({
        v: op.v,
        src: op.src ?? null,
        seq: op.seq ?? null,
        time: op.m?.ts ?? null,
        user: op.m?.user ?? null,
        ...(op.create ? { create: op.create } : op.del ? { del: true } : { op: op.op }),
      })),
    });
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'tandem-webhook',
          'tandem-delivery': deliveryId,
          'tandem-signature': signWebhook(this.config.secret, body, Date.now()),
        },
        body,
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
      // The body is not needed; reading it lets the connection be reused.
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
    } catch (err) {
      target.retryTo.set(key, to);
      return this.failed(target, err);
    }
    target.failures = 0;
    target.retryTo.delete(key);
    target.cursor.set(key, to);
    this.stats.delivered++;
    this.stats.opsDelivered += ops.length;
    try {
      await this.cursors.advance(target.url, collection, id, to);
    } catch (err) {
      // Delivered; the cursor is saved with the next delivery. After a crash meanwhile the
      // range goes again (at least once).
      this.logger.warn({ err: (err as Error).message, collection, id }, 'webhook: cursor not saved');
    }
    // More may have been committed meanwhile: it stays dirty until a read finds nothing.
  }

  private failed(target: Target, err: unknown): void {
    this.stats.failed++;
    target.failures++;
    const backoff = Math.min(MAX_BACKOFF_MS, this.config.retryMs * 2 ** Math.min(target.failures - 1, 16));
    target.notBefore = Date.now() + backoff;
    // Rate-limited: one line per doubling, not per attempt.
    if ((target.failures & (target.failures - 1)) === 0) {
      this.logger.warn(
        { url: target.url, failures: target.failures, retryInMs: backoff, err: (err as Error).message },
        'webhook delivery failed',
      );
    }
  }

  /** Stops delivering; waits for deliveries in flight (bounded by WEBHOOK_TIMEOUT_MS). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.allSettled([...this.inFlight]);
  }
}
