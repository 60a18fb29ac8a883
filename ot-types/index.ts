export {
  tandemJson1,
  registerTandemTypes,
  isTandemJson1Registered,
  JSON1_TYPE_NAME,
  JSON1_TYPE_URI,
  PLAIN_JSON1_WARNING,
  TRANSFORM_FAILED_CODE,
  type TandemJson1Type,
} from './json1-type.js';
export { ops, setOp } from './op-builders.js';
export { checkOpAgainst, type OpMismatch } from './check-op.js';
export { trialApply } from './text-positions.js';
export { transformPresence, isJson1Presence, type Json1Presence } from './presence.js';
export {
  validateJson1Op,
  checkJsonLimits,
  jsonDepth,
  jsonTextNestsDeeper,
  DEFAULT_OP_LIMITS,
  type OpLimits,
  type OpProblem,
} from './validate-op.js';
export type { JSONOp, Doc as JsonValue, Path } from 'ot-json1';
