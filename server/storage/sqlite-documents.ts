/**
 * Where a SQLite store keeps its documents' current state, so that a commit costs the op, not
 * the document:
 * - `heads`: each document's version, one small row written with every op, in the same
 *   transaction. It is what commits and reads check: the truth of "which version is current".
 * - `snapshots`: each document's snapshot as last written whole. With the snapshot cache on
 *   (SNAPSHOT_CACHE_MB) it is written lazily: every SNAPSHOT_FLUSH_OPS versions, after
 *   SNAPSHOT_FLUSH_MS, on eviction from the cache and on close; a create or delete at once (so
 *   a collection scan always sees which documents exist).
 * - the op log (SqliteDB's `ops`) fills the gap: a document whose cache entry is missing or
 *   behind its head is rebuilt from its snapshot row plus the ops after it.
 *
 * Acked ops stay exactly as durable as before (they are the op rows, committed before any ack);
 * after a crash, a document's first read replays at most SNAPSHOT_FLUSH_OPS ops written by
 * one process (more only if several processes each left some unwritten).
 */
import * as ot from 'sharedb/lib/ot.js';
import { TandemErrorCode } from '../../client/protocol.js';
import { registerTandemTypes } from '../../ot-types/json1-type.js';
import type { QuerySnapshot } from './mingo-query.js';
import { committedCopy, extendTail, shellOf, SnapshotCache, type CachedDoc, type SnapshotCacheOptions } from './snapshot-cache.js';

export { DEFAULT_SNAPSHOT_CACHE, type SnapshotCacheOptions } from './snapshot-cache.js';
import { storageError, type Connection, type SqliteWriter } from './sqlite-connection.js';
import { HEADED_COLUMNS, HEADED_FROM } from './sqlite-heads.js';
import { docKey, splitDocKey } from '../doc-key.js';

/** A row of `snapshots`, with its document's head when the statement joined it. */
export interface SnapshotRow {
  v: number;
  type: string | null;
  data: string | null;
  metadata: string | null;
  head?: number | null;
}

/** A committed op as ShareDB hands it over (stored whole as JSON). */
interface CommittedOp {
  v: number;
  src?: string;
  seq?: number;
  create?: unknown;
  del?: unknown;
  m?: unknown;
}

function parseMeta(text: string | null): QuerySnapshot['m'] {
  return text === null ? null : (JSON.parse(text) as QuerySnapshot['m']);
}

/** A stored row as ShareDB's snapshot (deleted documents as MemoryDB returns them: no data, no metadata). */
export function toSnapshot(id: string, row: SnapshotRow | undefined, withMeta: boolean): QuerySnapshot {
  if (!row) return { id, v: 0, type: null, data: undefined, m: null };
  if (row.type === null) return { id, v: row.v, type: null, data: undefined, m: null };
  return {
    id,
    v: row.v,
    type: row.type,
    data: row.data === null ? undefined : JSON.parse(row.data),
    m: withMeta ? parseMeta(row.metadata) : null,
  };
}

/** The metadata ShareDB's submit gives a snapshot (submit-request.js `_addSnapshotMeta`), replayed from the op's. */
function metaAfter(m: QuerySnapshot['m'], op: CommittedOp): QuerySnapshot['m'] {
  if (op.del) return null;
  const ts = (op.m as { ts?: number } | undefined)?.ts;
  if (op.create) return { ctime: ts, mtime: ts, _create: { src: op.src, seq: op.seq, v: op.v } };
  return { ...m, mtime: ts };
}

/** How a read reaches SqliteDocuments.current. */
export interface ReadOptions {
  /** The stored row, when the caller read it (with its head). */
  row?: SnapshotRow;
  /** False leaves the cache as it was (a query scanning many). Default true. */
  remember?: boolean;
  /** ShareDB's read before a commit (`{$submit: true}`); see isFresh. */
  forSubmit?: boolean;
}

/** What /metrics reports of the cache (`tandem_snapshot_cache{measure}`). */
export interface SnapshotCacheState {
  /** Documents held. */
  documents: number;
  /** Their JSON bytes (see SnapshotCache). */
  bytes: number;
  /** Documents with versions their snapshot row does not have yet. */
  unwritten: number;
  /** Timed snapshot writes that failed since start (each is retried by the next one). */
  failedWrites: number;
}

/** Replays from a newer stored row after another process compacted the op log under a read (see caughtUp). */
const MISSING_OPS_RETRIES = 3;

export class SqliteDocuments {
  private readonly cache: SnapshotCache;
  private readonly stmts;
  private readonly timer: NodeJS.Timeout | null;
  /** Background snapshot writes that failed (the file busy or failing); see `state`. */
  private failedWrites = 0;
  /**
   * Validation epochs: a new one starts whenever `PRAGMA data_version` shows that another
   * connection committed to the file. An entry read or written in the current epoch is the
   * head without a read of `heads` (SQLite does not count this connection's own commits).
   */
  private epoch = 0;
  private seenDataVersion: number;
  /** data_version is read once per event-loop turn, not once per read. */
  private checkedThisTurn = false;
  private readonly endTurn = (): void => {
    this.checkedThisTurn = false;
  };
  /** Set by the first expectVersion: every submit is announced, so its read may skip the check (isFresh). */
  private submitsAnnounced = false;

  constructor(
    conn: Connection,
    private readonly writer: SqliteWriter,
    private readonly opts: SnapshotCacheOptions,
    private readonly now: () => number = Date.now,
  ) {
    // Rebuilding applies stored ops with ShareDB's type registry: a store opened on its own
    // (a reader, a tool) needs Tandem's json1 there too.
    registerTandemTypes();
    this.cache = new SnapshotCache(opts.cacheBytes);
    this.stmts = {
      head: conn.prepare('SELECT v FROM heads WHERE collection = ? AND id = ?'),
      // Not .pluck(): libsql (0.5) plucks only in all(); get() returns the row object.
      dataVersion: conn.prepare('PRAGMA data_version'),
      snapshot: conn.prepare(`SELECT ${HEADED_COLUMNS} FROM ${HEADED_FROM} WHERE s.collection = ? AND s.id = ?`),
      // Never moves a row back: another process may have written a newer one.
      writeSnapshot: conn.prepare(`INSERT INTO snapshots (collection, id, type, v, data, metadata)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (collection, id) DO UPDATE SET
          type = excluded.type, v = excluded.v, data = excluded.data, metadata = excluded.metadata
        WHERE excluded.v > snapshots.v`),
      ops: conn.prepare('SELECT v, op FROM ops WHERE collection = ? AND id = ? AND v >= ? AND v < ? ORDER BY v'),
    };
    this.seenDataVersion = this.dataVersion(); // epoch 0 starts at open
    this.timer = this.cache.enabled ? setInterval(() => this.flushDue(), Math.max(10, opts.flushMs / 4)) : null;
    this.timer?.unref();
  }

  private dataVersion(): number {
    return (this.stmts.dataVersion.get() as { data_version: number }).data_version;
  }

  /** The document's current version (0 when it never existed). */
  head(collection: string, id: string): number {
    return (this.stmts.head.get(collection, id) as { v: number } | undefined)?.v ?? 0;
  }

  /**
   * The current snapshot: the cached one when its version is the head, else the cached or
   * stored one caught up from the op log (see ReadOptions).
   */
  current(collection: string, id: string, withMeta: boolean, { row, remember = true, forSubmit = false }: ReadOptions = {}): QuerySnapshot {
    const key = docKey(collection, id);
    let doc = this.cache.enabled ? this.cache.get(key) : undefined;
    if (doc && !row && this.isFresh(doc, forSubmit)) return shellOf(doc.snapshot, withMeta);
    const head = row ? (row.head ?? row.v) : this.head(collection, id);
    if (doc && doc.snapshot.v === head) {
      if (doc.epoch !== this.epoch) this.cache.replace(key, { ...doc, epoch: this.epoch });
      return shellOf(doc.snapshot, withMeta);
    }
    // Ahead of the store: a turn whose COMMIT failed. Behind: another process committed.
    if (!doc || doc.snapshot.v > head) {
      const stored = row ?? (this.stmts.snapshot.get(collection, id) as SnapshotRow | undefined);
      const snapshot = toSnapshot(id, stored, true);
      doc = { snapshot, bytes: stored?.data?.length ?? 0, storedV: snapshot.v, dirtySince: null };
    }
    if (doc.snapshot.v < head) doc = this.caughtUp(collection, id, doc, head);
    if (remember && this.cache.enabled) this.cache.set(key, { ...doc, epoch: this.epoch });
    return shellOf(doc.snapshot, withMeta);
  }

  /**
   * A submit of an op built on `opVersion` is about to read its snapshot (see
   * VersionHintedStore): an entry behind that version missed another process's commit, so
   * its next read takes the head.
   */
  expectVersion(collection: string, id: string, opVersion: unknown): void {
    this.submitsAnnounced = true;
    if (typeof opVersion !== 'number') return;
    const doc = this.cache.peek(docKey(collection, id));
    if (doc && doc.snapshot.v < opVersion) this.stale(collection, id);
  }

  /**
   * True when the cached `doc` is the head without reading it: it was read or written in the
   * current epoch, and no other connection has committed since (checked once per turn). A
   * read in the same turn as another process's commit may still be a turn late; a commit
   * built on it fails its version check, which ends the entry's trust (`stale`).
   *
   * A submit's read skips the check once submits are announced (expectVersion): measured at
   * W3's rate (one op per turn), PRAGMA data_version was a quarter of SQLite's time per commit
   * (62 of 231 µs), since the first read of a turn pays for cold caches. An entry behind
   * another process's commit costs the commit's version check, then ShareDB's retry reads the
   * head.
   */
  private isFresh(doc: CachedDoc, forSubmit: boolean): boolean {
    // After a failed COMMIT the cache may hold versions the store never took.
    if (doc.epoch === undefined || this.writer.failed) return false;
    if (!this.checkedThisTurn && !(forSubmit && this.submitsAnnounced)) {
      this.checkedThisTurn = true;
      setImmediate(this.endTurn);
      const version = this.dataVersion();
      if (version !== this.seenDataVersion) {
        this.seenDataVersion = version;
        this.epoch++;
      }
    }
    return doc.epoch === this.epoch;
  }

  /** A commit found the document's head moved by another writer: read the head next time. */
  stale(collection: string, id: string): void {
    const key = docKey(collection, id);
    const doc = this.cache.peek(key);
    if (doc?.epoch !== undefined) this.cache.replace(key, { ...doc, epoch: undefined });
  }

  /** The stored op rows [from, to), every one of them: a hole is TANDEM_MISSING_OPS (as in MemoryDB). */
  opRows(collection: string, id: string, from: number, to: number): Array<{ v: number; op: string }> {
    const rows = this.opRowsIfWhole(collection, id, from, to);
    if (!rows) {
      throw storageError(TandemErrorCode.MISSING_OPS, `Missing ops: ${collection}/${id} [${from}, ${to})`);
    }
    return rows;
  }

  /** The op rows [from, to) when the log holds every one of them, else null. */
  opRowsIfWhole(collection: string, id: string, from: number, to: number): Array<{ v: number; op: string }> | null {
    const rows = this.stmts.ops.all(collection, id, from, to) as Array<{ v: number; op: string }>;
    return rows.length === to - from ? rows : null;
  }

  /**
   * Op rows [from, to) from the cached document's tail when it holds all of them, else null
   * (then the store is read). No version check is needed: committed ops never change.
   */
  tailOps(collection: string, id: string, from: number, to: number): Array<{ v: number; op: string }> | null {
    // After a failed COMMIT the cache may hold ops the store never took.
    if (!this.cache.enabled || this.writer.failed) return null;
    const tail = this.cache.peek(docKey(collection, id))?.tail;
    if (!tail || from < tail.from || to > tail.from + tail.ops.length) return null;
    return tail.ops.slice(from - tail.from, to - tail.from).map((op, i) => ({ v: from + i, op }));
  }

  /** Forgets the op tails (after op-log compaction, so a compacted op reads as missing again). */
  dropTails(): void {
    this.cache.dropTails();
  }

  /**
   * `doc` replayed to `head`. Another process may compact the op log meanwhile (or may have,
   * while `doc` sat in this cache): it removes only ops below a snapshot row it wrote first, so
   * when ops after `doc` are missing, the stored row has moved past `doc` and the replay
   * starts from that row instead, read again with its head.
   */
  private caughtUp(collection: string, id: string, doc: CachedDoc, head: number): CachedDoc {
    for (let attempt = 1; ; attempt++) {
      if (doc.snapshot.v >= head) return doc;
      try {
        return this.replay(collection, id, doc, head);
      } catch (err) {
        if ((err as { code?: unknown }).code !== TandemErrorCode.MISSING_OPS || attempt === MISSING_OPS_RETRIES) throw err;
        const stored = this.stmts.snapshot.get(collection, id) as SnapshotRow | undefined;
        if (!stored || stored.v <= doc.snapshot.v) throw err; // not a compaction: the log has a hole
        const snapshot = toSnapshot(id, stored, true);
        doc = { snapshot, bytes: stored.data?.length ?? 0, storedV: snapshot.v, dirtySince: null };
        head = stored.head ?? stored.v;
      }
    }
  }

  private replay(collection: string, id: string, doc: CachedDoc, head: number): CachedDoc {
    const rows = this.opRows(collection, id, doc.snapshot.v, head);
    const snapshot = shellOf(doc.snapshot, true);
    let bytes = doc.bytes;
    let tail = doc.tail;
    for (const row of rows) {
      const op = JSON.parse(row.op) as CommittedOp;
      op.v = row.v;
      const err = ot.apply(snapshot, op);
      if (err)
        throw storageError(
          TandemErrorCode.STORAGE_ERROR,
          `Op ${row.v} of ${collection}/${id} does not apply to its snapshot: ${err.message}`,
        );
      snapshot.m = metaAfter(snapshot.m, op);
      bytes += row.op.length;
      tail = extendTail(tail, row.v, row.op);
    }
    return { snapshot, bytes, storedV: doc.storedV, dirtySince: doc.dirtySince ?? this.now(), tail };
  }

  /**
   * True when committing `op` leaves the whole snapshot to a later write: on top of the cached
   * entry the op was applied to, not a create or delete, and within SNAPSHOT_FLUSH_OPS.
   */
  defersSnapshot(collection: string, id: string, op: CommittedOp, snapshot: QuerySnapshot): boolean {
    if (!this.cache.enabled || op.create || op.del) return false;
    const base = this.cache.peek(docKey(collection, id));
    return base !== undefined && base.snapshot.v === op.v && snapshot.v - base.storedV < this.opts.flushOps;
  }

  /**
   * Called inside the commit's write, after its op row (whose trigger moved the head): writes
   * the whole snapshot now unless `deferred` (see defersSnapshot), and caches it.
   */
  committed(collection: string, id: string, snapshot: QuerySnapshot, opJson: string, deferred: boolean): void {
    const key = docKey(collection, id);
    const base = this.cache.enabled ? this.cache.get(key) : undefined;
    const v = snapshot.v - 1;
    const tail = this.cache.enabled ? extendTail(base?.snapshot.v === v ? base.tail : undefined, v, opJson) : undefined;
    const kept = committedCopy(id, snapshot, snapshot.type == null);
    // Our own commit, at the head (the INSERT checked it): the entry is the head.
    const epoch = this.epoch;
    let doc: CachedDoc;
    if (deferred && base) {
      const dirtySince = base.dirtySince ?? this.now();
      doc = { snapshot: kept, bytes: base.bytes + opJson.length, storedV: base.storedV, dirtySince, tail, epoch };
    } else {
      const bytes = this.write(collection, id, kept) + (tail?.bytes ?? 0);
      doc = { snapshot: kept, bytes, storedV: kept.v, dirtySince: null, tail, epoch };
    }
    if (this.cache.enabled) this.cache.set(key, doc);
  }

  /** Writes a snapshot row whole; returns its JSON bytes. */
  private write(collection: string, id: string, snapshot: QuerySnapshot): number {
    const live = snapshot.type != null && snapshot.data !== undefined;
    const data = live ? JSON.stringify(snapshot.data) : null;
    this.stmts.writeSnapshot.run(
      collection,
      id,
      snapshot.type ?? null,
      snapshot.v,
      data,
      snapshot.m == null ? null : JSON.stringify(snapshot.m),
    );
    return data?.length ?? 0;
  }

  /** Writes the given entries' snapshots in one write of the store and marks them clean. */
  private flush(entries: Array<[string, CachedDoc]>, thenEvict: boolean): void {
    const dirty = entries.filter(([, doc]) => doc.dirtySince !== null);
    const written =
      dirty.length === 0 ? [] : this.writer.write(() => dirty.map(([key, doc]) => this.write(...splitDocKey(key), doc.snapshot)));
    dirty.forEach(([key, doc], i) => {
      if (!thenEvict)
        this.cache.replace(key, { ...doc, bytes: written[i]! + (doc.tail?.bytes ?? 0), storedV: doc.snapshot.v, dirtySince: null });
    });
    if (thenEvict) for (const [key] of entries) this.cache.delete(key);
  }

  /** Evicts past SNAPSHOT_CACHE_MB, least recently used first, writing what is unwritten. */
  evictOverBudget(): void {
    if (this.cache.enabled) this.flush(this.cache.overBudget(), true);
  }

  /** Writes the snapshots unwritten for longer than SNAPSHOT_FLUSH_MS. */
  flushDue(): void {
    const before = this.now() - this.opts.flushMs;
    try {
      this.flush(
        this.cache.dirty().filter(([, doc]) => doc.dirtySince! <= before),
        false,
      );
    } catch {
      // The ops are durable; the rows are written by a later flush or rebuilt from the ops.
      // Counted for /metrics: a disk problem shows there before a commit fails on it.
      this.failedWrites++;
    }
  }

  /** Writes every unwritten snapshot (before compaction, which never passes a snapshot row). */
  flushAll(): void {
    this.flush(this.cache.dirty(), false);
  }

  /**
   * Stops the timer and writes every unwritten snapshot, so the next start reads rows instead
   * of replaying ops. Not after a failed COMMIT: what the cache holds past it was never stored.
   */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    if (!this.writer.failed) this.flushAll();
  }

  /** What /metrics reports. */
  get state(): SnapshotCacheState {
    return { documents: this.cache.size, bytes: this.cache.bytes, unwritten: this.cache.dirty().length, failedWrites: this.failedWrites };
  }
}
