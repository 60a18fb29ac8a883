import type { Connection } from 'sharedb/lib/client/index.js';
import { jsonDepth } from '../ot-types/index.js';
import { toTandemError } from './doc-sync.js';
import { TandemErrorCode, type TandemError, type WireError } from './protocol.js';
import { connectionInternals, docInternals } from './sharedb-internals.js';

/** The last op message sent for one document. */
interface SentOp {
  c: string;
  d: string;
  seq: number;
  /** The message as sent; its size is only measured when a refusal needs it (rare). */
  message: object;
  /** The op as sent (for the depth of a frame refused as too deep). */
  payload: unknown;
}

/**
 * One key per document, built for every op sent: the collection's length keeps every (c, d)
 * pair apart without JSON-encoding them.
 */
function docKey(c: string, d: string): string {
  return `${c.length}:${c}${d}`;
}

/** Deep enough to beat any frame a server accepts; stops jsonDepth early on huge input. */
const DEPTH_PROBE = 10_000;

/**
 * Server errors that answer no request ShareDB can match (no `a` field). The server sends
 * them for a frame it refused to parse — `TANDEM_FRAME_TOO_LARGE`, or `TANDEM_BAD_FRAME`
 * for one nested too deep — so it cannot say which op it was. Left alone, ShareDB logs
 * "Ignoring unrecognized message" and the op waits for an acknowledgement forever,
 * blocking every later op of its document.
 *
 * Only op messages carry user content that large or deep, and ShareDB has at most one op
 * in flight per document: the largest (or deepest) op in flight is taken to be the one
 * refused, and the error is handed to ShareDB as that op's reply — so it is rolled back and
 * reported like any other rejected op. Anything unattributable goes to `report`.
 */
export function attributeUnmatchedErrors(connection: Connection, report: (error: TandemError) => void): void {
  const sent = new Map<string, SentOp>();
  connection.on('send', (message: { a?: unknown; c?: unknown; d?: unknown; seq?: unknown; op?: unknown; create?: unknown }) => {
    if (message.a !== 'op' || typeof message.c !== 'string' || typeof message.d !== 'string') return;
    if (typeof message.seq !== 'number') return;
    const payload = message.op ?? message.create;
    sent.set(docKey(message.c, message.d), { c: message.c, d: message.d, seq: message.seq, message, payload });
  });
  connection.on('receive', (request) => {
    const message = request.data as { a?: unknown; error?: WireError } | null;
    if (!message || message.a !== undefined || !message.error) return;
    // Handled here; ShareDB skips a request whose data was cleared.
    request.data = null;
    const error = toTandemError(message.error);
    const target = pickInFlight(connection, sent, measureFor(error));
    if (!target) {
      report(error);
      return;
    }
    sent.delete(docKey(target.c, target.d));
    const internals = connectionInternals(connection);
    const doc = internals.getExisting(target.c, target.d);
    if (!doc) return;
    const inflight = docInternals(doc).inflightOp;
    internals.handleMessage({
      a: 'op',
      c: target.c,
      d: target.d,
      src: inflight?.src ?? undefined,
      seq: target.seq,
      v: doc.version,
      error: message.error,
    });
  });
}

/**
 * How to find the refused op for this error, or null when it cannot be one of our ops.
 * TANDEM_BAD_FRAME also answers frames that are not JSON (never ours); only its "nests
 * deeper than N levels" form can be an op, and then only an op at least that deep.
 */
function measureFor(error: TandemError): ((s: SentOp) => number) | null {
  if (error.code === TandemErrorCode.FRAME_TOO_LARGE) return (s) => JSON.stringify(s.message).length;
  if (error.code !== TandemErrorCode.BAD_FRAME) return null;
  const limit = /nests deeper than (\d+)/.exec(error.message);
  if (!limit) return null;
  const levels = Number(limit[1]);
  return (s) => {
    const depth = jsonDepth(s.payload, DEPTH_PROBE);
    // The frame wraps the op in a few levels of its own; an op well below the limit is not it.
    return depth + FRAME_ENVELOPE_DEPTH > levels ? depth : -1;
  };
}

/** Levels a ShareDB op message adds around the op itself (message → op → …). */
const FRAME_ENVELOPE_DEPTH = 4;

/** The in-flight op that measures most (and at least 0), or null. */
function pickInFlight(connection: Connection, sent: Map<string, SentOp>, measure: ((s: SentOp) => number) | null): SentOp | null {
  if (!measure) return null;
  let best: SentOp | null = null;
  let bestScore = -1;
  for (const entry of sent.values()) {
    const doc = connectionInternals(connection).getExisting(entry.c, entry.d);
    if (!doc || docInternals(doc).inflightOp?.seq !== entry.seq) continue;
    const score = measure(entry);
    if (score >= 0 && score > bestScore) {
      best = entry;
      bestScore = score;
    }
  }
  return best;
}
