import type ShareDB from 'sharedb';
import { TandemError, TandemErrorCode } from '../../client/protocol.js';
import { checkJsonLimits, validateJson1Op, JSON1_TYPE_NAME, JSON1_TYPE_URI, type OpLimits, type OpProblem } from '../../ot-types/index.js';

const PROBLEM_CODE: Record<OpProblem['kind'], TandemErrorCode> = {
  'too-large': TandemErrorCode.OP_TOO_LARGE,
  'too-deep': TandemErrorCode.OP_TOO_DEEP,
  invalid: TandemErrorCode.INVALID_OP,
};

/** The submitted op as ShareDB's SubmitRequest holds it (fields are untyped in @types/sharedb). */
interface SubmittedOp {
  op?: unknown;
  create?: { type?: unknown; data?: unknown };
  del?: unknown;
}

/** Returns the error a submitted op earns, or null when it may proceed to ShareDB. */
export function checkSubmittedOp(submitted: SubmittedOp, limits: OpLimits): TandemError | null {
  let problem: OpProblem | null = null;
  if (submitted.create) {
    const type = submitted.create.type;
    if (type !== JSON1_TYPE_NAME && type !== JSON1_TYPE_URI) {
      return new TandemError(
        TandemErrorCode.UNSUPPORTED_TYPE,
        `documents must use the json1 type ("${JSON1_TYPE_URI}"), got ${JSON.stringify(type)}`,
      );
    }
    problem = checkJsonLimits(submitted.create.data, limits, 'document');
  } else if ('op' in submitted) {
    problem = validateJson1Op(submitted.op, limits);
  }
  return problem ? new TandemError(PROBLEM_CODE[problem.kind], problem.message) : null;
}

/** Refuses invalid, oversized and too-deep ops before ShareDB loads or transforms anything. */
export function useOpValidation(backend: ShareDB, limits: OpLimits): void {
  backend.use('submit', (context, next) => {
    // A plain {code, message}: an Error's stack would be captured and formatted per refusal.
    next(checkSubmittedOp(context.op as SubmittedOp, limits)?.toJSON());
  });
}
