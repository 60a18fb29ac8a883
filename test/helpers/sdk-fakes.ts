import type { DocKey, LockManagerLike, OutboxRecord, OutboxStore } from '../../client/index.js';
import { MemoryOutboxStore } from '../../client/index.js';

/**
 * An in-memory Web Locks stand-in (exclusive locks only), shared by several clients to
 * play several tabs of one browser. A lock is held until the callback's promise settles.
 */
export class FakeLockManager implements LockManagerLike {
  readonly held = new Set<string>();

  request(name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => unknown): Promise<unknown> {
    if (this.held.has(name)) {
      if (options.ifAvailable) return Promise.resolve(callback(null));
      return Promise.reject(new Error('FakeLockManager only supports ifAvailable requests'));
    }
    this.held.add(name);
    return Promise.resolve(callback({ name, mode: 'exclusive' })).finally(() => this.held.delete(name));
  }
}

/** A memory store whose saves wait until `release()` (or fail after `failNext()`). */
export class GatedStore implements OutboxStore {
  readonly name = 'gated';
  readonly inner = new MemoryOutboxStore();
  /** Records passed to save(), in order. */
  readonly saves: OutboxRecord[] = [];
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  private failing = 0;

  /** Makes later saves wait until `release()`. */
  block(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open?.();
    this.gate = null;
  }

  failNext(count = 1): void {
    this.failing += count;
  }

  load(key: DocKey): Promise<OutboxRecord | null> {
    return this.inner.load(key);
  }

  async save(record: OutboxRecord): Promise<void> {
    this.saves.push(structuredClone(record));
    if (this.gate) await this.gate;
    if (this.failing > 0) {
      this.failing--;
      throw new Error('disk full (simulated)');
    }
    await this.inner.save(record);
  }

  remove(key: DocKey): Promise<void> {
    return this.inner.remove(key);
  }

  keys(): Promise<DocKey[]> {
    return this.inner.keys();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
