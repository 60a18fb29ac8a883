import * as json1 from 'ot-json1';
import type { JSONOp, Path } from 'ot-json1';

/**
 * A cursor or selection inside a json1 document: `path` names a string (or any value) and
 * `anchor`/`head` are text offsets in Unicode code points inside that string (the unit
 * ot-text-unicode uses). Without offsets the presence points at the value itself.
 */
export interface Json1Presence {
  path: Path;
  anchor?: number;
  head?: number;
  /** Free-form user data (name, colour); passed through untouched. */
  user?: Record<string, unknown>;
}

function transformOffset(path: Path, offset: number, op: JSONOp): { path: Path; offset: number } | null {
  const moved = json1.type.transformPosition([...path, offset], op);
  if (moved === null) return null;
  const last = moved[moved.length - 1];
  if (typeof last !== 'number') return null;
  return { path: moved.slice(0, -1), offset: last };
}

/**
 * Moves a presence through an op, as ShareDB's `type.transformPresence(presence, op, isOwnOp)`
 * contract asks. Returns null when the value it pointed at was removed, which ShareDB turns
 * into "no presence" for that client.
 */
export function transformPresence(presence: unknown, op: JSONOp, _isOwnOp: boolean): Json1Presence | null {
  if (!isJson1Presence(presence)) return null;
  if (op === null) return presence;
  if (presence.anchor === undefined && presence.head === undefined) {
    const path = json1.type.transformPosition(presence.path, op);
    return path === null ? null : { ...presence, path };
  }
  const anchor = presence.anchor ?? presence.head ?? 0;
  const head = presence.head ?? anchor;
  const a = transformOffset(presence.path, anchor, op);
  const h = transformOffset(presence.path, head, op);
  if (a === null || h === null) return null;
  return { ...presence, path: a.path, anchor: a.offset, head: h.offset };
}

export function isJson1Presence(value: unknown): value is Json1Presence {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Partial<Json1Presence>;
  if (!Array.isArray(p.path) || !p.path.every((k) => typeof k === 'string' || typeof k === 'number')) return false;
  if (p.anchor !== undefined && !Number.isInteger(p.anchor)) return false;
  if (p.head !== undefined && !Number.isInteger(p.head)) return false;
  return true;
}
