import type { JSONOp, Doc as JsonValue } from 'ot-json1';

/** Identifies one document in an outbox. */
export interface DocKey {
  collection: string;
  id: string;
}

/**
 * One op not yet acknowledged by the server, with the identity ShareDB de-duplicates by.
 * `src` + `seq` are assigned and saved before the op is first sent (write-ahead), so a
 * resent copy after a restart is recognised by the server if the first copy was committed.
 */
export interface OutboxOp {
  src: string;
  seq: number;
  /** A json1 op, or absent for a delete. */
  op?: JSONOp;
  /** True for a document delete. */
  del?: true;
}

/**
 * What the outbox keeps per document. Invariant: the client's local view is `snapshot`
 * with every op of `pending` applied in order, and `pending[0]` applies to `snapshot`.
 */
export interface OutboxRecord {
  collection: string;
  id: string;
  /** Server version `snapshot` is at; the first pending op is (re)sent against it. */
  version: number;
  /** OT type URI of the document (json1's). */
  type: string;
  /** The document as the server had it at `version`. */
  snapshot: JsonValue;
  /** Unacknowledged ops, oldest first; the first may have reached the server already. */
  pending: OutboxOp[];
  /** When this record was written (ms since epoch); for tooling and diagnostics. */
  savedAt: number;
}

/**
 * A durable store for the offline outbox. Implementations: `IndexedDbOutboxStore`
 * (browsers), `SqliteOutboxStore` (Node, from `client/node.ts`), `MemoryOutboxStore`.
 *
 * `save` must resolve only once the record is durable: the SDK sends an op only after the
 * save that contains it resolved.
 */
export interface OutboxStore {
  /** Distinguishes outboxes (e.g. per user) in lock names; stable across restarts. */
  readonly name: string;
  load(key: DocKey): Promise<OutboxRecord | null>;
  save(record: OutboxRecord): Promise<void>;
  remove(key: DocKey): Promise<void>;
  /** Every stored document key (e.g. to find documents with pending ops at start-up). */
  keys(): Promise<DocKey[]>;
  close(): Promise<void>;
}

/** Validates a record read back from storage (it may come from an older or broken run). */
export function isOutboxRecord(value: unknown): value is OutboxRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<OutboxRecord>;
  return (
    typeof r.collection === 'string' &&
    typeof r.id === 'string' &&
    typeof r.version === 'number' &&
    typeof r.type === 'string' &&
    Array.isArray(r.pending) &&
    r.pending.every((p) => typeof p?.src === 'string' && typeof p.seq === 'number' && ('op' in p || p.del === true))
  );
}

/**
 * Keeps records in memory (structured clones, as a real store would). Survives a client
 * being closed and reopened in the same process — useful for tests and for apps that want
 * the SDK's rejection handling without durability.
 */
export class MemoryOutboxStore implements OutboxStore {
  private readonly records = new Map<string, OutboxRecord>();

  constructor(readonly name = 'memory') {}

  load(key: DocKey): Promise<OutboxRecord | null> {
    const record = this.records.get(keyString(key));
    return Promise.resolve(record ? structuredClone(record) : null);
  }

  save(record: OutboxRecord): Promise<void> {
    this.records.set(keyString(record), structuredClone(record));
    return Promise.resolve();
  }

  remove(key: DocKey): Promise<void> {
    this.records.delete(keyString(key));
    return Promise.resolve();
  }

  keys(): Promise<DocKey[]> {
    return Promise.resolve([...this.records.values()].map(({ collection, id }) => ({ collection, id })));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A collision-free string for a document key (collection names may contain any character). */
export function keyString(key: DocKey): string {
  return JSON.stringify([key.collection, key.id]);
}
