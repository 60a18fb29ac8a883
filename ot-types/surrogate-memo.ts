/**
 * Which long strings are free of surrogate code units, and for those the flat pieces they are
 * made of (text-layout.ts). Shared by the server and the browser SDK: no Node-only APIs.
 */
import { type Layout, type LayoutLimits, layoutOf } from './text-layout.js';

const SURROGATE = /[\uD800-\uDFFF]/;

export interface MemoLimits extends LayoutLimits {
  /** Shorter strings are scanned every time: cheaper than keeping them. */
  minLength: number;
  maxEntries: number;
  /** Strings of one length kept at once (documents of equal length must not evict each other). */
  maxPerLength: number;
  /** UTF-16 units held by all entries together (the memo keeps its strings alive). */
  maxChars: number;
}

export const DEFAULT_MEMO_LIMITS: Readonly<MemoLimits> = Object.freeze({
  minLength: 1024,
  maxEntries: 1024,
  maxPerLength: 16,
  maxChars: 64 * 1024 * 1024,
  maxPieces: 32,
  minBlockChars: 1024,
  blockScale: 16,
});

/** One text of one document (a caller's key), followed from each apply to the next. */
interface Lineage {
  entry: MemoEntry | null;
}

export interface MemoEntry {
  readonly text: string;
  readonly surrogateFree: boolean;
  /** How `text` is made of flat strings; built on first use for a string found by a scan. */
  layout: Layout | null;
  /** When it was last recorded or found (orders a length's entries for eviction). */
  used: number;
  lineage: Lineage | null;
}

/**
 * Strings are primitives with no identity to hang a WeakMap on, so entries are found by
 * length, then by `===` against each entry of that length (at most `maxPerLength`). V8 answers
 * `===` by pointer when it is the very string recorded, the usual case: a document's text is
 * the result of the previous apply. Otherwise, when the first units are equal, V8 flattens
 * BOTH strings before comparing them (String::SlowEquals): a copy of each if it is a cons
 * string, as an apply's result is, about 1 ms per MB. So a lookup tries first the entry found
 * last (the apply after a size check finds it at once), and a new entry goes last (documents
 * of equal length taking turns are found first try). In any other order, equal-length texts
 * that start alike can cost that copy; `entryAt` avoids it for callers that know which
 * document and path a text is at.
 */
export class SurrogateMemo {
  private readonly byLength = new Map<number, MemoEntry[]>();
  /** Every kept entry, least recently used first (a Set keeps insertion order). */
  private readonly recency = new Set<MemoEntry>();
  /** By caller key, least recently used first; at most `maxEntries`. */
  private readonly lineages = new Map<string, Lineage>();
  private heldChars = 0;
  private clock = 0;

  constructor(readonly limits: Readonly<MemoLimits> = DEFAULT_MEMO_LIMITS) {}

  get size(): number {
    return this.recency.size;
  }

  get chars(): number {
    return this.heldChars;
  }

  /** True when `text` is one of the strings this memo holds. */
  holds(text: string): boolean {
    return this.find(text) !== undefined;
  }

  /** The entry for `text`, if kept: then it is tried first by the next lookup of its length. */
  find(text: string): MemoEntry | undefined {
    const entries = this.byLength.get(text.length);
    if (entries === undefined) return undefined;
    for (const entry of entries) {
      if (entry.text === text) {
        this.promote(entry, entries);
        return entry;
      }
    }
    return undefined;
  }

  /** The entry for a long `text`: kept, or from a scan (kept if within bounds). */
  entry(text: string): MemoEntry {
    return this.find(text) ?? this.record(text, !SURROGATE.test(text), null);
  }

  /**
   * `entry(text)` for a text the caller knows as the one at `key` (a document and a path):
   * when it is what the last apply to that text returned, found by pointer without trying
   * other strings of its length.
   */
  entryAt(key: string, text: string): MemoEntry {
    let lineage = this.lineages.get(key);
    const known = lineage?.entry;
    // === is a pointer comparison when it holds, and a length comparison when lengths differ.
    const entry =
      known != null && known.text === text && this.recency.has(known)
        ? this.promote(known, this.byLength.get(text.length) ?? [])
        : this.entry(text);
    if (!this.recency.has(entry)) return entry;
    if (lineage === undefined) lineage = { entry: null };
    this.lineages.delete(key);
    this.lineages.set(key, lineage);
    if (this.lineages.size > this.limits.maxEntries) this.lineages.delete(this.lineages.keys().next().value as string);
    lineage.entry = entry;
    entry.lineage = lineage;
    return entry;
  }

  isSurrogateFree(text: string, key?: string): boolean {
    if (text.length < this.limits.minLength) return !SURROGATE.test(text);
    return (key === undefined ? this.entry(text) : this.entryAt(key, text)).surrogateFree;
  }

  /** The entry's layout, built from its text (flat since its scan) if it has none yet. */
  layout(entry: MemoEntry): Layout {
    entry.layout ??= layoutOf(entry.text, this.limits);
    return entry.layout;
  }

  /** Keeps what is known of `text` (unless out of bounds) and returns it. */
  record(text: string, surrogateFree: boolean, layout: Layout | null): MemoEntry {
    const entry: MemoEntry = { text, surrogateFree, layout, used: 0, lineage: null };
    const { minLength, maxEntries, maxPerLength, maxChars } = this.limits;
    if (text.length < minLength || text.length > maxChars) return entry;
    const sameLength = this.byLength.get(text.length) ?? [];
    while (sameLength.length >= Math.max(maxPerLength, 1)) this.drop(sameLength.reduce((a, b) => (b.used < a.used ? b : a)));
    this.byLength.set(text.length, sameLength);
    sameLength.push(entry);
    this.touch(entry);
    this.heldChars += text.length;
    while (this.recency.size > maxEntries || this.heldChars > maxChars) {
      this.drop(this.recency.values().next().value as MemoEntry);
    }
    return entry;
  }

  /**
   * An apply turned `input`'s text into `text`: the document no longer holds the input, so it
   * is dropped (or every version of a hot long string would stay alive here), and the result
   * is recorded in its place, also in its lineage.
   */
  replace(input: MemoEntry, text: string, surrogateFree: boolean, layout: Layout | null): MemoEntry {
    const lineage = input.lineage;
    this.drop(input);
    const result = this.record(text, surrogateFree, layout);
    if (lineage !== null && this.recency.has(result)) {
      lineage.entry = result;
      result.lineage = lineage;
    }
    return result;
  }

  /** Lets go of an entry (nothing if it is not kept). */
  drop(entry: MemoEntry): void {
    if (!this.recency.delete(entry)) return;
    if (entry.lineage?.entry === entry) entry.lineage.entry = null;
    this.heldChars -= entry.text.length;
    const entries = this.byLength.get(entry.text.length) ?? [];
    entries.splice(entries.indexOf(entry), 1);
    if (entries.length === 0) this.byLength.delete(entry.text.length);
  }

  /** Makes `entry` (one of `entries`, its length's) the first tried and the last evicted. */
  private promote(entry: MemoEntry, entries: MemoEntry[]): MemoEntry {
    const at = entries.indexOf(entry);
    if (at > 0) {
      entries.splice(at, 1);
      entries.unshift(entry);
    }
    this.touch(entry);
    return entry;
  }

  private touch(entry: MemoEntry): void {
    entry.used = ++this.clock;
    this.recency.delete(entry);
    this.recency.add(entry);
  }
}
