/**
 * Current snapshots a PostgresDB read or wrote, so that a commit to a large document does
 * not fetch and parse the whole document from PostgreSQL again (ShareDB reads the snapshot
 * before every commit). PostgreSQL stays the truth: every read still asks it for the
 * document's version, and gets the document only when the cached one is not at that version
 * (one round trip either way), so several instances on one database stay correct.
 *
 * Unlike SQLite's cache (sqlite-documents.ts), every commit still writes the whole snapshot:
 * queries run in SQL on the stored documents, so those must be current.
 */
import type { QuerySnapshot } from './mingo-query.js';
import { toSnapshot } from './postgres-query-run.js';
import { committedCopy, shellOf, SnapshotCache } from './snapshot-cache.js';
import { docKey } from '../doc-key.js';

/** A snapshot row as the cached read returns it: `data` JSON text, null when deleted or when it is the cached version. */
export interface CheckedSnapshotRow {
  v: number;
  type: string | null;
  data: string | null;
  metadata: unknown;
}

/** The cached read: $3 is the cached version (-1 for none); the document comes back only when the row is at another. */
export function checkedSnapshotSql(snapshotsTable: string): string {
  return `SELECT v, type, CASE WHEN v = $3::integer THEN NULL ELSE data::text END AS data, metadata
    FROM ${snapshotsTable} WHERE collection = $1 AND id = $2`;
}

/** checkedSnapshotSql for many documents of one collection: $2 their ids, $3 the cached versions (-1 for none), in the same order. */
export function checkedSnapshotBulkSql(snapshotsTable: string): string {
  return `SELECT s.id, s.v, s.type, CASE WHEN s.v = c.cached THEN NULL ELSE s.data::text END AS data, s.metadata
    FROM unnest($2::text[], $3::integer[]) AS c(id, cached)
    JOIN ${snapshotsTable} s ON s.collection = $1 AND s.id = c.id`;
}

export interface PostgresSnapshotCacheState {
  /** Documents held. */
  documents: number;
  /** Their JSON bytes. */
  bytes: number;
}

export class PostgresSnapshots {
  private readonly cache: SnapshotCache;

  /** `cacheBytes`: SNAPSHOT_CACHE_MB in bytes; 0 reads every document whole, as without a cache. */
  constructor(cacheBytes: number) {
    this.cache = new SnapshotCache(cacheBytes);
  }

  /**
   * The cached snapshot, if any: its version is $3 of checkedSnapshotSql, and it goes back to
   * fromRow with the answer (the cache may hold another version by then).
   */
  lookup(collection: string, id: string): QuerySnapshot | undefined {
    return this.cache.enabled ? this.cache.get(docKey(collection, id))?.snapshot : undefined;
  }

  /**
   * The snapshot a checked read answers: `sent` (what lookup gave) when the row is at its
   * version, else the row's, which is remembered. `row` undefined: no such document.
   */
  fromRow(
    collection: string,
    id: string,
    row: CheckedSnapshotRow | undefined,
    sent: QuerySnapshot | undefined,
    withMeta: boolean,
  ): QuerySnapshot {
    if (row && sent && sent.v === row.v) return shellOf(sent, withMeta);
    const parsed = row && { ...row, data: row.data === null ? null : JSON.parse(row.data), metadata: row.metadata as QuerySnapshot['m'] };
    const snapshot = toSnapshot(id, parsed, true);
    if (snapshot.type !== null) this.remember(docKey(collection, id), snapshot, row?.data?.length ?? 0);
    return shellOf(snapshot, withMeta);
  }

  /** A commit of this instance stored `snapshot`, whose data is `dataJson` (null once deleted). */
  committed(collection: string, id: string, snapshot: QuerySnapshot, dataJson: string | null): void {
    if (!this.cache.enabled) return;
    const kept = committedCopy(id, snapshot, snapshot.type == null || dataJson === null);
    this.remember(docKey(collection, id), kept, dataJson?.length ?? 0);
  }

  /** The cached snapshot may not be the stored one (a commit that lost or failed). */
  forget(collection: string, id: string): void {
    this.cache.delete(docKey(collection, id));
  }

  get state(): PostgresSnapshotCacheState {
    return { documents: this.cache.size, bytes: this.cache.bytes };
  }

  private remember(key: string, snapshot: QuerySnapshot, bytes: number): void {
    if (!this.cache.enabled) return;
    // A read that started before one of our commits may answer after it: keep the newer.
    const cached = this.cache.peek(key);
    if (cached && cached.snapshot.v > snapshot.v) return;
    this.cache.set(key, { snapshot, bytes, storedV: snapshot.v, dirtySince: null });
    for (const [evicted] of this.cache.overBudget()) this.cache.delete(evicted);
  }
}
