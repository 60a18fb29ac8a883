/**
 * What a document may hold (ids are checked earlier, server/backend.ts): keys and strings
 * json1 and UTF-8 keep faithfully, and at most MAX_DOC_BYTES of JSON.
 *
 * Size without re-encoding: each document's size at its current version is remembered (one
 * JSON encoding the first time this instance sees it, or after another instance wrote it),
 * and each op adds what it changes (doc-size.ts), so a small op on a large document costs
 * what the op touches. A growth past the limit is refused; an op that shrinks an oversized
 * document (one stored before the limit, or under a larger one) is let through.
 */
import type ShareDB from 'sharedb';
import type { JSONOp } from 'ot-json1';
import { ShareDbErrorCode, TandemError, TandemErrorCode, type WireError } from '../../client/protocol.js';
import { JSON1_TYPE_URI } from '../../ot-types/json1-type.js';
import { findContentProblem } from '../../ot-types/validate-op.js';
import type { ResourceLimits } from '../config.js';
import type { TandemBackend } from '../backend.js';
import { isServerSide } from '../middleware/enforce-access.js';
import { DocSizes } from './doc-sizes.js';
import { jsonBytes, opSizeDelta } from './doc-size.js';
import { docKey } from '../doc-key.js';

/** The submitted op as ShareDB's SubmitRequest holds it (fields untyped in @types/sharedb). */
interface SubmittedOp {
  op?: JSONOp;
  create?: { data?: unknown };
  del?: unknown;
}

/** The fields of ShareDB's SubmitRequest read here. */
interface SubmitRequest {
  agent: ShareDB.middleware.BaseContext['agent'];
  collection: string;
  id: string;
  op: SubmittedOp;
  snapshot: { v: number; type: string | null; data?: unknown } | null;
}

/**
 * Refusals are plain `{code, message}`: ShareDB replies with nothing more, and for an Error
 * it would format and log the stack of every refused op.
 */
function refusal(code: TandemErrorCode | typeof OP_NOT_APPLIED, message: string): WireError {
  return new TandemError(code, message).toJSON();
}

/** ShareDB's code for an op its type could not apply to the document. */
const OP_NOT_APPLIED = ShareDbErrorCode.OP_NOT_APPLIED;

function tooLarge(collection: string, id: string, bytes: number, limit: number): WireError {
  return refusal(
    TandemErrorCode.DOC_TOO_LARGE,
    `${collection}/${id} would be ${bytes} bytes of JSON after this op; the limit is ${limit} (MAX_DOC_BYTES)`,
  );
}

/** Registers id, content and size checks on the backend. */
export function useDocumentLimits(backend: TandemBackend, limits: ResourceLimits): void {
  const sizes = new DocSizes();
  /** The size each request's op leads to, from 'apply' to 'afterWrite' (once committed). */
  const sizeAfter = new WeakMap<object, number>();

  backend.use('submit', (context, next) => {
    const request = context as unknown as SubmitRequest;
    const { op } = request;
    // Everyone, the server's own connections included: json1 and the store would lose these.
    // (Ops are checked the same way by validateJson1Op, in the op validation before this.)
    const problem = op.create ? findContentProblem(op.create.data) : null;
    if (problem) return next(refusal(TandemErrorCode.INVALID_OP, `${request.collection}/${request.id}: ${problem}`));
    if (op.create && !isServerSide(request.agent)) {
      const bytes = jsonBytes(op.create.data);
      if (bytes > limits.maxDocBytes) return next(tooLarge(request.collection, request.id, bytes, limits.maxDocBytes));
    }
    next();
  });

  // 'apply' sees the snapshot before the op (after transform, on every commit retry).
  backend.use('apply', (context, next) => {
    const request = context as unknown as SubmitRequest;
    const snapshot = request.snapshot;
    // No document: ShareDB's apply refuses the op with its own code (ERR_DOC_DOES_NOT_EXIST).
    // Documents of another type (none can be created) are not measured.
    if (request.op.op === undefined || snapshot?.type !== JSON1_TYPE_URI) return next();
    const key = docKey(request.collection, request.id);
    let delta: number;
    try {
      // The key lets the text memo find this document's string by identity (text-positions.ts).
      delta = opSizeDelta(snapshot.data, request.op.op, key);
    } catch (err) {
      // Refused here with the code ShareDB's apply would give, before json1 applies it: a text
      // edit past the end of its string would hold the event loop first.
      return next(refusal(OP_NOT_APPLIED, `${request.collection}/${request.id}: the op does not apply: ${(err as Error).message}`));
    }
    const before = sizes.get(key, snapshot.v) ?? jsonBytes(snapshot.data);
    const after = before + delta;
    if (delta > 0 && after > limits.maxDocBytes && !isServerSide(request.agent)) {
      // Known now, and still right: nothing was committed.
      sizes.set(key, snapshot.v, before);
      return next(tooLarge(request.collection, request.id, after, limits.maxDocBytes));
    }
    sizeAfter.set(request, after);
    next();
  });

  backend.use('afterWrite', (context, next) => {
    const request = context as unknown as SubmitRequest;
    const key = docKey(request.collection, request.id);
    const version = request.snapshot?.v;
    const after = sizeAfter.get(request);
    if (request.op.create && version !== undefined) sizes.set(key, version, jsonBytes(request.op.create.data));
    else if (after !== undefined && version !== undefined) sizes.set(key, version, after);
    else sizes.forget(key);
    next();
  });
}
