/**
 * Which op versions of each document one connection has already been sent, so that the
 * same op is not encoded and sent to it twice.
 *
 * ShareDB answers a submit with every op the submitted op was transformed against ("ops
 * the client may have missed", Agent._submit) and then the ack, even when the client is
 * subscribed and its subscription already delivered those ops; and an op its submit reply
 * carried comes again from the subscription. Under concurrent editing about a third of the
 * op messages a server sent were such repeats (BENCHMARKS.md). A ShareDB client ignores
 * an op older than its document's version, so a repeat costs the server its encoding and
 * write, the client its parse, and changes nothing.
 *
 * An op is skipped only if that very version was sent (or acknowledged) on this
 * connection since the client last told the server where its document stands: a
 * subscribe, fetch or unsubscribe naming the document forgets what was sent for it, since
 * the client may then hold an older version (a document recreated from a stored snapshot
 * asks for the ops after it). Acks are never skipped, so an ack still follows every op it
 * depends on: the skipped copy's original was written before it.
 *
 * Nothing is recorded for a document between such a request and its reply. A ShareDB
 * client drops an op ahead of its version while its fetch is in flight (the reply is to
 * bring it), so an op the subscription delivered in that window may be dropped; had it been
 * recorded, the reply's copy would have been skipped and the client left one op behind
 * until its next fetch (seen: SDK clients over three instances stuck one version behind).
 */
import { docKey } from '../doc-key.js';

export class SentOps {
  /** Document (docKey) → versions; made on the first op sent (idle connections hold none). */
  private docs: Map<string, SentVersions> | null = null;
  /** Documents with a subscribe, fetch or unsubscribe not answered yet → how many (see the class comment). */
  private awaitingReply: Map<string, number> | null = null;
  /** Set when a client keeps more than maxDocs requests unanswered: nothing is skipped on this connection any more. */
  private off = false;

  /** `maxDocs`: documents tracked at most; past it all is forgotten (a resend is only waste). */
  constructor(private readonly maxDocs = 10_000) {}

  /** Sees a request from the client. */
  requested(message: Readonly<Record<string, unknown>>): void {
    if (this.off) return;
    for (const key of resyncedDocs(message)) {
      this.docs?.delete(key);
      this.awaitingReply ??= new Map();
      this.awaitingReply.set(key, (this.awaitingReply.get(key) ?? 0) + 1);
    }
    if ((this.awaitingReply?.size ?? 0) > this.maxDocs) {
      this.off = true;
      this.docs = null;
      this.awaitingReply = null;
    }
  }

  /**
   * Whether a message ShareDB sends should go: false only for an op message repeating an
   * op already sent on this connection. Records what it lets through.
   */
  shouldSend(message: Readonly<Record<string, unknown>>): boolean {
    if (this.off) return true;
    const { a, c, d, v } = message;
    // A reply to (or the refusal of) a subscribe, fetch or unsubscribe: ShareDB echoes the request's a, c, d / b.
    if (a !== 'op') {
      if (this.awaitingReply) this.answered(message);
      return true;
    }
    if (typeof c !== 'string' || typeof d !== 'string' || typeof v !== 'number' || 'error' in message) return true;
    const key = docKey(c, d);
    if (this.awaitingReply?.has(key)) return true;
    const isOp = 'op' in message || 'create' in message || 'del' in message;
    this.docs ??= new Map();
    const sent = this.docs.get(key);
    if (sent === undefined) {
      if (this.docs.size >= this.maxDocs) this.docs.clear();
      this.docs.set(key, new SentVersions(v));
      return true;
    }
    if (isOp && sent.has(v)) return false;
    sent.add(v);
    return true;
  }

  private answered(reply: Readonly<Record<string, unknown>>): void {
    const awaiting = this.awaitingReply!;
    for (const key of resyncedDocs(reply)) {
      const left = (awaiting.get(key) ?? 0) - 1;
      if (left > 0) awaiting.set(key, left);
      else awaiting.delete(key);
    }
    if (awaiting.size === 0) this.awaitingReply = null;
  }
}

/**
 * The documents a subscribe, fetch or unsubscribe (or its reply, which echoes it) names, as
 * keys; none for any other message. Bulk requests name them as an array of ids or a map id →
 * version; a bulk reply carrying snapshots names them as the keys of its `data` instead.
 */
function resyncedDocs(message: Readonly<Record<string, unknown>>): string[] {
  const { a, c, d } = message;
  if (typeof c !== 'string') return [];
  if (a === 's' || a === 'f' || a === 'u') return typeof d === 'string' ? [docKey(c, d)] : [];
  if (a !== 'bs' && a !== 'bf' && a !== 'bu') return [];
  const named = message.b ?? message.data;
  const ids = Array.isArray(named) ? named : named !== null && typeof named === 'object' ? Object.keys(named) : [];
  return ids.filter((id): id is string => typeof id === 'string').map((id) => docKey(c, id));
}

/** Most versions kept apart from the run; past it they are forgotten (then possibly resent). */
const MAX_APART = 64;

/**
 * A set of versions, held as a run "every version from `from` to `through`" plus the few
 * sent apart from it (an op that arrived ahead of an earlier one, e.g. across instances).
 */
class SentVersions {
  private from: number;
  private through: number;
  private apart: Set<number> | null = null;

  constructor(version: number) {
    this.from = version;
    this.through = version;
  }

  has(version: number): boolean {
    return (version >= this.from && version <= this.through) || (this.apart?.has(version) ?? false);
  }

  add(version: number): void {
    if (version === this.through + 1) {
      this.through = version;
      if (this.apart === null) return;
      while (this.apart.delete(this.through + 1)) this.through++;
      if (this.apart.size === 0) this.apart = null;
    } else if (version === this.from - 1) {
      this.from = version;
    } else if (!this.has(version)) {
      this.apart ??= new Set();
      if (this.apart.size >= MAX_APART) this.apart.clear();
      this.apart.add(version);
    }
  }
}
