import type { CompactableStore } from './storage/oplog-retention.js';
import type { VersionHintedStore } from './storage/store-db.js';
import ShareDB from 'sharedb';
import { ShareDbErrorCode, TandemError, TandemErrorCode } from '../client/protocol.js';
import { registerTandemTypes, type OpLimits } from '../ot-types/index.js';
import { AccessPolicy } from './auth/access.js';
import { loadConfig } from './config.js';
import { setIdentity, type Agent } from './auth/agent-identity.js';
import { useSourceBinding } from './middleware/bind-source.js';
import { isServerSide, readableOnly, SILENT_REFUSAL, useAccessControl } from './middleware/enforce-access.js';
import { useIdValidation, useMessageValidation } from './middleware/validate-messages.js';
import { MessageStream } from './transport/message-stream.js';
import { useOpValidation } from './middleware/validate-ops.js';
import type { Logger } from './ops/logger.js';
import { docKey } from './doc-key.js';

registerTandemTypes();

export interface BackendOptions {
  db: ShareDB.DB;
  milestoneDb?: ShareDB.MilestoneDB;
  pubsub?: ShareDB.PubSub;
  limits: OpLimits;
  logger: Logger;
  /** Access rules and hook; default: everything allowed. */
  access?: AccessPolicy;
  /** Longest collection name or document id (MAX_ID_LENGTH; default in server/config.ts). */
  maxIdLength?: number;
  /**
   * Queue submits per document inside this instance (default true). Off only to measure
   * what the queue saves (test/integration/hot-doc.test.ts): ShareDB's plain optimistic
   * submits, retrying against each other.
   */
  serializeSubmits?: boolean;
}

/** Figures the backend keeps for /metrics and the load tool. */
export interface BackendStats {
  /** Ops committed by this instance. */
  commits: number;
  /** Times a commit was retried because another commit to the same doc won the race. */
  commitRetries: number;
  /** Submits refused (validation, missing doc, access…). */
  rejected: number;
  /** Resent ops ShareDB recognised as already committed (acked, not applied again). */
  duplicates: number;
  /** Submits accepted from clients and not yet finished. */
  inFlight: number;
}

/** How one submit ended, for metrics (TandemBackend.onSubmitDone). */
export interface SubmitOutcome {
  collection: string;
  result: 'committed' | 'duplicate' | 'rejected';
  /** The refusal's code, when rejected. */
  code?: string;
  /** Commits retried because another commit won the race. */
  retries: number;
  /** ShareDB's own submit (read, transform, commit), without the wait for the document's queue. */
  submitMs: number;
  /** From backend.submit() to the answer: the queue wait included. */
  totalMs: number;
}

type SubmitCallback = Parameters<ShareDB['submit']>[5];

/** ShareDB's query request builder, not in @types/sharedb. */
interface ShareDbInternals {
  _triggerQuery(
    agent: Agent,
    index: string,
    query: unknown,
    options: unknown,
    callback: (err: unknown, request?: { db: ShareDB.DB | null }) => void,
  ): void;
}

/**
 * ShareDB's Backend with submits serialised per document inside this instance.
 *
 * ShareDB commits optimistically: concurrent submits to one document each fetch the
 * snapshot, race to commit, and the losers re-fetch, transform and retry — on a hot
 * document most of the work is retries (sharedb-mongo#123). Queuing submits per document
 * removes those races within an instance; across instances the store's version check
 * still decides, so correctness never depends on the queue. Measured (hot-doc.test.ts, 50
 * writers × 4 rounds, store answering after 1 ms as a networked one does): 0 retries with
 * the queue, ~4,900 without. With the embedded SQLite store, which answers on the next
 * tick, submits from different sockets hardly overlap and both give 0.
 */
export class TandemBackend extends ShareDB {
  readonly stats: BackendStats = { commits: 0, commitRetries: 0, rejected: 0, duplicates: 0, inFlight: 0 };
  /** Tail of each document's submit chain; deleted when the chain drains. */
  private readonly docQueues = new Map<string, Promise<void>>();
  private readonly idleWaiters = new Set<() => void>();
  /** See BackendOptions.serializeSubmits; mutable so a test can compare both on one server. */
  serializeSubmits = true;
  /** Who may read and write what (server/auth/access.ts). */
  access = new AccessPolicy(null, null);
  /** Told of every finished submit (metrics). */
  onSubmitDone: ((outcome: SubmitOutcome) => void) | null = null;

  /**
   * Every query's DB is wrapped so its results and polls hold only readable documents.
   * ShareDB sets `request.db` after the 'query' middleware, so this is the one place to do it.
   */
  _triggerQuery(...args: Parameters<ShareDbInternals['_triggerQuery']>): void {
    const [agent, , , , callback] = args;
    const original = (ShareDB.prototype as unknown as ShareDbInternals)._triggerQuery;
    original.call(this, ...(args.slice(0, 4) as [Agent, string, unknown, unknown]), (err, request) => {
      if (request?.db && !isServerSide(agent) && !this.access.open) request.db = readableOnly(request.db, this.access, agent);
      callback(err, request);
    });
  }

  override submit(
    agent: Parameters<ShareDB['submit']>[0],
    index: string,
    id: string,
    op: Parameters<ShareDB['submit']>[3],
    options: Parameters<ShareDB['submit']>[4],
    callback: SubmitCallback,
  ): void {
    callback = this.recognisingCompactedResends(index, id, op as { src?: unknown; seq?: unknown }, callback);
    const key = docKey(index, id);
    const receivedAt = performance.now();
    let submittedAt = receivedAt;
    this.stats.inFlight++;
    const previous = (this.serializeSubmits && this.docQueues.get(key)) || Promise.resolve();
    const done = new Promise<void>((release) => {
      let finished = false;
      const finish: SubmitCallback = (err, ops, request) => {
        if (finished) return;
        finished = true;
        const retries = (request as { retries?: number } | undefined)?.retries ?? 0;
        this.stats.commitRetries += retries;
        // A resend whose first copy was committed (its ack was lost) is answered as an ack.
        const code = (err as { code?: unknown } | null)?.code;
        const result = code === ShareDbErrorCode.ALREADY_SUBMITTED ? 'duplicate' : err ? 'rejected' : 'committed';
        if (result === 'duplicate') this.stats.duplicates++;
        else if (result === 'rejected') this.stats.rejected++;
        else this.stats.commits++;
        if (this.onSubmitDone) {
          const now = performance.now();
          this.onSubmitDone({
            collection: index,
            result,
            code: code === undefined || code === null ? undefined : String(code),
            retries,
            submitMs: now - submittedAt,
            totalMs: now - receivedAt,
          });
        }
        release();
        this.stats.inFlight--;
        if (this.docQueues.get(key) === done) this.docQueues.delete(key);
        if (this.stats.inFlight === 0) for (const wake of this.idleWaiters) wake();
        callback(err, ops, request);
      };
      void previous.then(() => {
        submittedAt = performance.now();
        try {
          (this.db as Partial<VersionHintedStore>).expectVersion?.(index, id, (op as { v?: unknown } | null)?.v);
          super.submit(agent, index, id, op, options, finish);
        } catch (err) {
          // ShareDB throws synchronously on some malformed ops (e.g. building its request).
          // Outside the agent's own try/catch (we are in a promise callback), that would
          // leave this document's queue blocked and the drain waiting: answer instead, with
          // ShareDB's stable code for a message it cannot use.
          const message = `malformed op: ${(err as Error).message}`;
          const coded = Object.assign(new Error(message), { code: ShareDbErrorCode.BADLY_FORMED });
          finish(coded as unknown as Parameters<SubmitCallback>[0], []);
        }
      });
    });
    this.docQueues.set(key, done);
  }

  /**
   * A resend of an op committed long ago meets a hole in the op log once compaction removed
   * the ops it would be transformed past (OPLOG_RETENTION), and ShareDB can no longer see it
   * was a duplicate. The store records, per source, the highest seq it removed: a resend at or
   * below it is answered TANDEM_ALREADY_COMMITTED instead of the missing-ops error, so no
   * client applies it a second time (the SDK then re-expresses only the ops after it).
   */
  private recognisingCompactedResends(
    index: string,
    id: string,
    op: { src?: unknown; seq?: unknown },
    callback: SubmitCallback,
  ): SubmitCallback {
    const store = this.db as Partial<CompactableStore>;
    if (typeof store.prunedSeq !== 'function' || typeof op?.src !== 'string' || typeof op.seq !== 'number') return callback;
    const { src, seq } = op;
    return (err, ops, request) => {
      const code = (err as { code?: unknown } | null)?.code;
      if (code !== TandemErrorCode.MISSING_OPS && code !== ShareDbErrorCode.TRANSFORM_OPS_NOT_FOUND) return callback(err, ops, request);
      store.prunedSeq!(index, id, src).then(
        (pruned) => {
          if (pruned === null || pruned < seq) return callback(err, ops, request);
          const committed = new TandemError(
            TandemErrorCode.ALREADY_COMMITTED,
            `op ${src}:${seq} was committed earlier; the history since was compacted (OPLOG_RETENTION)`,
          );
          callback(committed as unknown as Parameters<SubmitCallback>[0], ops, request);
        },
        () => callback(err, ops, request),
      );
    };
  }

  /** Resolves once no submit is in flight (or after `timeoutMs`); used by graceful shutdown. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.stats.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (idle: boolean) => {
        clearTimeout(timer);
        this.idleWaiters.delete(wake);
        resolve(idle);
      };
      const wake = () => finish(true);
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.idleWaiters.add(wake);
    });
  }

  closeAsync(): Promise<void> {
    return new Promise((resolve, reject) => this.close((err) => (err ? reject(err) : resolve())));
  }
}

/** Builds the ShareDB backend with Tandem's middleware, in order. */
export function createBackend(options: BackendOptions): TandemBackend {
  const backend = new TandemBackend({
    db: options.db,
    milestoneDb: options.milestoneDb,
    pubsub: options.pubsub,
    presence: true,
    // Presence errors are the sender's business; do not tear down other clients' streams.
    doNotForwardSendPresenceErrorsToClient: true,
    errorHandler: (err: Error, context: { agent?: { clientId: string } }) => {
      // Presence withheld from a client that may not read the document is not a fault.
      if ((err as { code?: string }).code === SILENT_REFUSAL) return;
      options.logger.warn({ err, connection: context.agent?.clientId }, 'sharedb error');
    },
  });
  backend.serializeSubmits = options.serializeSubmits ?? true;
  if (options.access) backend.access = options.access;
  // The transport verified who is connecting; ShareDB's agent takes it before anything else.
  backend.use('connect', (context, next) => {
    if (context.stream instanceof MessageStream) {
      if (context.stream.identity) setIdentity(context.agent, context.stream.identity);
      context.stream.who.connection = context.agent.clientId;
    }
    next();
  });
  useMessageValidation(backend);
  // Ids before anything reads them: the access rules, the store, pub/sub channels.
  useIdValidation(backend, options.maxIdLength ?? loadConfig({}).limits.maxIdLength);
  useSourceBinding(backend);
  useAccessControl(backend, backend.access);
  useOpValidation(backend, options.limits);
  backend.on('error', (err: Error) => options.logger.error({ err }, 'sharedb backend error'));
  // ShareDB saves milestones after a commit with no callback: a failed save is an 'error'
  // event, which would end the process without a listener. The commit itself stands.
  backend.milestoneDb?.on('error', (err) => options.logger.warn({ err }, 'milestone snapshot not saved'));
  return backend;
}
