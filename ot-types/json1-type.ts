import * as json1 from 'ot-json1';
import type { JSONOp } from 'ot-json1';
import { types } from 'sharedb/lib/client/index.js';
import { transformPresence, type Json1Presence } from './presence.js';
import { anyComponent } from './op-components.js';
import { onlyEdits, transformRightAgreeingWithLeft } from './symmetric-transform.js';
import { fastTextUnicode } from './text-positions.js';

/*
 * json1 applies text edits with whatever is registered as 'text-unicode' in its module-global
 * subtype registry, read at each apply: registering ot-text-unicode with the O(op) apply here,
 * at load, makes every json1 apply in this process or page use it (ShareDB's server and client,
 * the SDK, and anyone's plain json1). Name, URI, transform and compose are ot-text-unicode's
 * own, so ops and results are unchanged.
 */
json1.type.registerSubtype(fastTextUnicode);

/**
 * Tandem's document type: `ot-json1` with every transform conflict resolved by json1's own
 * deterministic rules (`typeAllowingConflictsPred(() => true)`) instead of thrown.
 *
 * Policy, identical on server and clients because it is a pure function of the two ops:
 * - two inserts at the same key: the op transformed 'left' (the one committed first on the
 *   server) wins, the other insert is dropped;
 * - an edit or insert inside a subtree that a concurrent op removed is dropped with it;
 * - a move into a removed place is dropped (the moved item is removed too).
 * The plain json1 type throws `writeConflict` in those cases, which crashes a ShareDB client
 * mid-transform, so every party must register this type under json1's name and URI.
 *
 * It also carries `transformPresence`, which ShareDB requires before it relays presence on
 * a document; ot-json1 has none of its own (share/sharedb#423).
 */
const conflictResolving = json1.type.typeAllowingConflictsPred(() => true);

/** Error code of a transform that json1 could not compute (see `tandemJson1.transform`). */
export const TRANSFORM_FAILED_CODE = 'TANDEM_TRANSFORM_FAILED';

/** True when a json1 op removes something without carrying the removed value (`r: true`). */
const hasBareRemoval = (op: JSONOp): boolean => anyComponent(op, (c) => c.r === true);

export const tandemJson1 = Object.freeze({
  ...conflictResolving,
  /**
   * json1's transform, with its rare internal assertion failures (upstream bugs: it throws
   * an Error with an empty message) turned into an Error carrying a stable `code`. ShareDB's
   * server returns a transform's throw to the submitting client as is, so the client gets
   * `TANDEM_TRANSFORM_FAILED` and rolls its op back instead of seeing an uncoded error. A
   * pure function of the ops: server and clients fail on exactly the same pairs.
   */
  transform(op: JSONOp, other: JSONOp, side: 'left' | 'right'): JSONOp {
    try {
      // ShareDB's server and Tandem's SDK transform 'left' only; stock ShareDB clients carry
      // incoming ops past their pending ones 'right', which must agree with the server's
      // 'left' (symmetric-transform.ts). Ops that only edit values never conflict.
      if (side === 'right' && !(onlyEdits(op) && onlyEdits(other))) {
        const agreed = transformRightAgreeingWithLeft(op, other);
        if (agreed !== undefined) return agreed;
      }
      return conflictResolving.transform(op, other, side);
    } catch (err) {
      const detail = err instanceof Error && err.message ? err.message : 'internal assertion';
      throw Object.assign(new Error(`json1 could not transform the op (${side}): ${detail}`), { code: TRANSFORM_FAILED_CODE, cause: err });
    }
  },
  /**
   * json1 inverts a removal it has no value for (`r: true`) into the insertion of `true`:
   * a client rolling back such an op would corrupt its copy. Refuse instead, so ShareDB's
   * client reloads the document (the SDK first makes its ops invertible against its snapshot).
   */
  invert(op: JSONOp): JSONOp {
    if (hasBareRemoval(op)) throw new Error('json1 op removes values it does not carry: not invertible');
    return conflictResolving.invert(op);
  },
  transformPresence,
  /** Marks the type so registration can tell ours from the plain one. */
  tandemConflictResolving: true as const,
});

export type TandemJson1Type = typeof tandemJson1;
export type { Json1Presence };

/** The ShareDB type name under which documents are created. */
export const JSON1_TYPE_NAME = json1.type.name;
export const JSON1_TYPE_URI = json1.type.uri;

/** Message given to anyone who registered the plain json1 type. */
export const PLAIN_JSON1_WARNING =
  'Tandem: the plain ot-json1 type was registered with ShareDB; it throws writeConflict on ' +
  'concurrent edits. Tandem replaced it with the conflict-resolving type: register ' +
  "`tandemJson1` from Tandem's ot-types (registerTandemTypes()) instead of `json1.type`.";

interface TypeRegistry {
  map: Record<string, unknown>;
  register(type: unknown): void;
}

/**
 * Registers the conflict-resolving json1 type with ShareDB's (process- or page-wide) type
 * registry. Idempotent. If the plain json1 type is already registered it is replaced and
 * `onPlainType` is told, so the caller learns which type to use.
 */
export function registerTandemTypes(onPlainType: (message: string) => void = console.warn): void {
  // sharedb's bundled client `types` export is untyped in @types/sharedb.
  const registry = types as unknown as TypeRegistry;
  const current = registry.map[JSON1_TYPE_NAME] ?? registry.map[JSON1_TYPE_URI];
  if (current === tandemJson1) return;
  if (current !== undefined) onPlainType(PLAIN_JSON1_WARNING);
  registry.register(tandemJson1);
}

/** True when the registry holds Tandem's json1 (used by clients to refuse a mixed setup). */
export function isTandemJson1Registered(): boolean {
  const registry = types as unknown as TypeRegistry;
  return registry.map[JSON1_TYPE_NAME] === tandemJson1 && registry.map[JSON1_TYPE_URI] === tandemJson1;
}
