/**
 * The JSON size of recently written documents at their current version, so a size check
 * costs what the op touches rather than an encoding of the whole document. Bounded: the
 * least recently used entries go first, and a document without an entry is measured once.
 */
export class DocSizes {
  private readonly entries = new Map<string, { version: number; bytes: number }>();

  constructor(private readonly capacity = 4096) {}

  /** The size at `version`, or null when unknown (never seen, evicted, or written elsewhere). */
  get(key: string, version: number): number | null {
    const entry = this.entries.get(key);
    if (!entry || entry.version !== version) return null;
    // Most recently used last: Map keeps insertion order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.bytes;
  }

  set(key: string, version: number, bytes: number): void {
    this.entries.delete(key);
    this.entries.set(key, { version, bytes });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
