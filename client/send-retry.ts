import type { DocContext } from './doc-types.js';
import { toTandemError } from './doc-sync.js';
import type { TandemError } from './protocol.js';
import type { SendGate } from './send-gate.js';
import type { QueuedOp } from './sharedb-internals.js';

/** Longest wait between resends of a rate-limited op when the server did not say how long. */
const MAX_THROTTLE_BACKOFF_MS = 60_000;

/** What SendRetry needs from its document handle. */
export interface SendRetryHost {
  readonly ctx: Pick<DocContext, 'retryDelayMs' | 'maxRetries' | 'reauthenticate'>;
  readonly gate: SendGate;
  /** The op at the head of the queue (the one a transient refusal was about). */
  head(): QueuedOp | undefined;
  /** Gives up resending on its own: the ops are kept, and sending stops until `retry()`. */
  stall(error: TandemError): void;
  /** An error for the app ('error' event). */
  report(error: TandemError): void;
}

/**
 * When a document sends again after the server kept (did not commit, did not refuse for
 * good) one of its ops: after a fresh token, after the wait a rate limit asked for, or after
 * an exponential backoff for a transient failure, which stalls after `maxRetries` attempts
 * on one op. Each wait holds the document's SendGate; no wait drops an op.
 */
export class SendRetry {
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Transient failures of each op (by src:seq), for its backoff and the maxRetries bound. */
  private readonly attempts = new Map<string, number>();
  /** RATE_LIMITED refusals that named no wait, in a row (for the fallback backoff). */
  private throttledAttempts = 0;

  constructor(private readonly host: SendRetryHost) {}

  /** Holds sending until the client handed the server a fresh token, then resends. */
  awaitToken(): void {
    const { gate } = this.host;
    if (gate.holds('auth')) return;
    gate.hold('auth');
    this.host.ctx.reauthenticate().then(
      () => gate.release('auth'),
      (err: unknown) => {
        gate.release('auth');
        this.host.report(toTandemError(err));
      },
    );
  }

  /**
   * Over a rate limit: hold sending for the wait the server asked (or the retry backoff if
   * it did not say), then resend. Never counts toward maxRetries and never stalls: a client
   * typing faster than its budget only sees its ops composed and committed later.
   */
  waitForBudget(retryAfterMs: number | null): void {
    let delay = retryAfterMs;
    if (delay !== null) this.throttledAttempts = 0;
    else {
      const attempt = ++this.throttledAttempts;
      delay = Math.min(this.host.ctx.retryDelayMs * 2 ** Math.min(attempt - 1, 16), MAX_THROTTLE_BACKOFF_MS);
    }
    this.holdFor(delay);
  }

  /** A transient failure of the head op: resend after a backoff, or stall after maxRetries. */
  backOff(error: TandemError): void {
    const head = this.host.head();
    const key = `${head?.src}:${head?.seq}`;
    const attempt = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.set(key, attempt);
    if (attempt > this.host.ctx.maxRetries) {
      this.host.stall(error);
      return;
    }
    this.holdFor(this.host.ctx.retryDelayMs * 2 ** (attempt - 1));
  }

  /** Starts every op's count over (a manual retry, or the ops were discarded). */
  resetAttempts(): void {
    this.attempts.clear();
  }

  /** Stops the running wait; sending stays held (the handle is closing). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Forgets every wait and count, and lets sending resume (the ops were discarded). */
  forget(): void {
    this.cancel();
    this.resetAttempts();
    this.host.gate.release('retry');
  }

  /** Holds sending for `delayMs` (the 'retry' reason), replacing any earlier wait. */
  private holdFor(delayMs: number): void {
    this.host.gate.hold('retry');
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.host.gate.release('retry');
    }, delayMs);
  }
}
