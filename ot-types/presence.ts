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

/** One component of an ot-text-unicode op: skip n, insert text, or delete (count or text). */
type TextComponent = number | string | { d: number | string };

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** The text-unicode edit an op makes to the string at `path` (a path after the op), if any. */
function textEditAt(op: JSONOp, path: Path): readonly TextComponent[] | null {
  if (op === null) return null;
  const cursor = new json1.ReadCursor(op);
  for (const key of path) {
    if (!cursor.descendFirst()) return null;
    while (cursor.getKey() !== key) if (!cursor.nextSibling()) return null;
  }
  const c = cursor.getComponent() as { es?: TextComponent[]; et?: string; e?: unknown } | null;
  if (!c) return null;
  if (Array.isArray(c.es)) return c.es;
  if ((c.et === 'text-unicode' || c.et === 'http://sharejs.org/types/text-unicode') && Array.isArray(c.e)) {
    return c.e as TextComponent[];
  }
  return null;
}

/**
 * Moves a text offset through a text-unicode op. Deletes pull it back; inserts before it
 * push it on. An insert exactly at the offset pushes it only for the op's own author
 * (typing moves your cursor past what you typed, while another user's insert at your
 * cursor lands after it) — ShareDB's convention for rich-text presence.
 */
export function transformTextOffset(offset: number, edit: readonly TextComponent[], isOwnOp: boolean): number {
  let cursor = offset;
  let pos = 0;
  for (const c of edit) {
    if (isOwnOp ? cursor < pos : cursor <= pos) break;
    if (typeof c === 'number') {
      pos += c;
    } else if (typeof c === 'string') {
      const n = codePoints(c);
      pos += n;
      cursor += n;
    } else {
      const n = typeof c.d === 'number' ? c.d : codePoints(c.d);
      cursor -= Math.min(n, cursor - pos);
    }
  }
  return cursor;
}

/**
 * Moves a presence through an op, as ShareDB's `type.transformPresence(presence, op,
 * isOwnOp)` contract asks (ShareDB passes the op's source as `isOwnOp` for local
 * presence, and "same client" for remote ones). The path follows moves and list
 * inserts/removals; offsets follow text edits to that string. Returns null when the value
 * it pointed at was removed, which ShareDB turns into "no presence" for that client.
 */
export function transformPresence(presence: unknown, op: JSONOp, isOwnOp: boolean): Json1Presence | null {
  if (!isJson1Presence(presence)) return null;
  if (op === null) return presence;
  const path = json1.type.transformPosition(presence.path, op);
  if (path === null) return null;
  if (presence.anchor === undefined && presence.head === undefined) return { ...presence, path };
  const edit = textEditAt(op, path);
  const own = Boolean(isOwnOp);
  const anchor = presence.anchor ?? presence.head ?? 0;
  const head = presence.head ?? anchor;
  if (!edit) return { ...presence, path, anchor, head };
  return { ...presence, path, anchor: transformTextOffset(anchor, edit, own), head: transformTextOffset(head, edit, own) };
}

export function isJson1Presence(value: unknown): value is Json1Presence {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Partial<Json1Presence>;
  if (!Array.isArray(p.path) || !p.path.every((k) => typeof k === 'string' || typeof k === 'number')) return false;
  if (p.anchor !== undefined && !Number.isInteger(p.anchor)) return false;
  if (p.head !== undefined && !Number.isInteger(p.head)) return false;
  return true;
}
