import { clipped, type DocumentLogFields } from '../ops/log-fields.js';
import type { Logger } from '../ops/logger.js';

/** One line of the refusal log: a refused request, or a connection refused or dropped. */
export interface RefusalFields extends DocumentLogFields {
  /** The error code the client got (or the limit that dropped it). */
  code: string;
  /** ShareDB action of the refused message (`op`, `s`, `bs`, `qf`…), or the transport's step. */
  action?: string;
  /** `sub` of the connection's token, when it has one. */
  user?: string;
  ip?: string;
  [field: string]: unknown;
}

const WINDOW_MS = 1_000;

/**
 * Refusals as JSON lines, at most `perSecond` per second for the whole instance: a client
 * that sends thousands of bad requests a second must not make logging the bottleneck or
 * fill the disk. The lines past the budget are counted, and one line says how many were
 * left out once their second is over ("N refusals not logged").
 */
export class RefusalLog {
  private windowStart = Number.NEGATIVE_INFINITY;
  private loggedInWindow = 0;
  private skipped = 0;
  private summaryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Told of every refusal, logged or not (metrics). */
  onRefusal: ((code: string, action: string | undefined) => void) | null = null;

  /**
   * Logs (or counts) one refusal; `message` is the log line's `msg`. Refused requests are
   * `info` (clients such as the SDK meet some in normal use: a rate limit, an expired
   * token); a connection refused or dropped is `warn`.
   */
  record(fields: RefusalFields, message = 'request refused', level: 'info' | 'warn' = 'info'): void {
    this.onRefusal?.(fields.code, fields.action);
    const now = this.now();
    if (now - this.windowStart >= WINDOW_MS) {
      this.summarise();
      this.windowStart = now;
      this.loggedInWindow = 0;
    }
    if (this.loggedInWindow < this.perSecond) {
      this.loggedInWindow++;
      this.logger[level](fields, message);
      return;
    }
    this.skipped++;
    if (this.summaryTimer === null) {
      // Without it the count would wait for the next refusal, which may never come.
      this.summaryTimer = setTimeout(() => this.summarise(), Math.max(0, this.windowStart + WINDOW_MS - now));
      this.summaryTimer.unref();
    }
  }

  /** Writes the pending summary now (also at shutdown) and stops its timer. */
  close(): void {
    this.summarise();
  }

  private summarise(): void {
    if (this.summaryTimer !== null) clearTimeout(this.summaryTimer);
    this.summaryTimer = null;
    if (this.skipped === 0) return;
    const notLogged = this.skipped;
    this.skipped = 0;
    this.logger.warn({ refusalsNotLogged: notLogged }, `${notLogged} refusals not logged`);
  }
}

/** Who a connection's log lines name: its token's user, its address and (once ShareDB has one) its client id. */
export interface ConnectionWho {
  user?: string;
  ip?: string;
  connection?: string;
  /** Set where the transport is not evident from the line (`http` for /api/v1). */
  transport?: string;
}

/** The log line for an error reply (`{a, c, d | ch | id, v, error}`) sent to a client. */
export function refusalOfReply(reply: Readonly<Record<string, unknown>>, who: ConnectionWho): RefusalFields {
  const error = reply.error as { code?: unknown } | undefined;
  const code = error?.code;
  const fields: RefusalFields = { code: typeof code === 'string' || typeof code === 'number' ? clipped(String(code)) : 'UNKNOWN' };
  if (typeof reply.a === 'string') fields.action = clipped(reply.a);
  if (typeof reply.c === 'string') fields.collection = clipped(reply.c);
  const id = reply.d ?? reply.ch ?? reply.id;
  if (typeof id === 'string') fields.id = clipped(id);
  else if (typeof id === 'number') fields.id = id;
  if (Number.isSafeInteger(reply.v)) fields.version = reply.v as number;
  if (who.connection !== undefined) fields.connection = who.connection;
  if (who.user !== undefined) fields.user = who.user;
  if (who.ip !== undefined) fields.ip = who.ip;
  return fields;
}
