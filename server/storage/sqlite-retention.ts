/**
 * What OPLOG_RETENTION and WEBHOOK_URLS keep in a SQLite store beside the ShareDB data, on the
 * store's own connection and writer (so with group commit these writes join the turn's
 * transaction): compaction of the op log, the sources it removed, and webhook cursors.
 */
import type Database from 'libsql';
import type { WebhookCursors } from '../webhooks/cursors.js';
import type { CompactableStore, OplogRetention } from './oplog-retention.js';
import type { Connection, SqliteWriter } from './sqlite-connection.js';

/** Tables created with the store's own (SqliteDB's SCHEMA). */
export const RETENTION_SCHEMA = `
  -- WEBHOOK_URLS: per target, the next version of each document still to deliver.
  CREATE TABLE IF NOT EXISTS webhook_cursors (
    target TEXT NOT NULL,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    v INTEGER NOT NULL,
    PRIMARY KEY (target, collection, id)
  );
  -- OPLOG_RETENTION: the highest seq of each source whose ops compaction removed.
  CREATE TABLE IF NOT EXISTS pruned_sources (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    src TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (collection, id, src)
  );
`;

/**
 * Ops below each document's cut (oplog-retention.ts): never past an undelivered webhook
 * cursor, nor past the document's snapshot row, which may lag its head (sqlite-documents.ts)
 * and is rebuilt from the ops after it. ?1 versions, ?2 = ?3 the mtime bound or null, ?4 limit.
 */
const DOOMED_OPS_SQL = `SELECT o.rowid FROM (
        SELECT m.collection, m.id, max(m.v) AS cut
        FROM milestones m JOIN heads h ON h.collection = m.collection AND h.id = m.id
          JOIN snapshots s ON s.collection = m.collection AND s.id = m.id
        WHERE m.v <= h.v - ? AND m.v <= s.v AND (? IS NULL OR m.mtime < ?)
          AND m.v <= coalesce((SELECT min(w.v) FROM webhook_cursors w WHERE w.collection = m.collection AND w.id = m.id), m.v)
        GROUP BY m.collection, m.id
      ) c JOIN ops o ON o.collection = c.collection AND o.id = c.id AND o.v < c.cut
      ORDER BY o.rowid LIMIT ?`;

/** Records the doomed ops' sources (same parameters; run in the same transaction as the DELETE). */
const RECORD_PRUNED_SQL = `INSERT INTO pruned_sources (collection, id, src, seq)
  SELECT collection, id, src, max(seq) FROM ops WHERE rowid IN (${DOOMED_OPS_SQL}) AND src IS NOT NULL AND seq IS NOT NULL
  GROUP BY collection, id, src
  ON CONFLICT (collection, id, src) DO UPDATE SET seq = max(seq, excluded.seq)`;

const COMPACT_OPS_SQL = `DELETE FROM ops WHERE rowid IN (${DOOMED_OPS_SQL})`;

type Backlog = Array<{ collection: string; id: string; v: number }>;

export class SqliteRetention implements CompactableStore {
  private readonly stmts;
  private compactStatements: { record: Database.Statement; remove: Database.Statement } | null = null;

  constructor(
    private readonly conn: Connection,
    private readonly writer: SqliteWriter,
    /** Throws once the store is closed. */
    private readonly assertOpen: () => void,
  ) {
    this.stmts = {
      prunedSeq: conn.prepare('SELECT seq FROM pruned_sources WHERE collection = ? AND id = ? AND src = ?'),
      ensureCursor: conn.prepare('INSERT INTO webhook_cursors (target, collection, id, v) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING'),
      advanceCursor: conn.prepare('UPDATE webhook_cursors SET v = max(v, ?) WHERE target = ? AND collection = ? AND id = ?'),
      cursorBacklog: conn.prepare(`SELECT w.collection, w.id, w.v FROM webhook_cursors w
        JOIN heads h ON h.collection = w.collection AND h.id = w.id WHERE w.target = ? AND h.v > w.v`),
    };
  }

  /**
   * Removes at most `limit` ops below their document's cut (see oplog-retention.ts): the
   * newest milestone at least `versions` behind the document and older than `age`. One write
   * of this connection (inside the turn's transaction with group commit).
   */
  async compactOps(retention: OplogRetention, nowMs: number, limit: number): Promise<number> {
    this.assertOpen();
    // The milestones live in this file too, in a table the milestone store creates (after this one).
    if (!this.compactStatements) {
      if (!this.conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'milestones'").get()) return 0;
      this.compactStatements = { record: this.conn.prepare(RECORD_PRUNED_SQL), remove: this.conn.prepare(COMPACT_OPS_SQL) };
    }
    const { record, remove } = this.compactStatements;
    const before = retention.ageMs === null ? null : nowMs - retention.ageMs;
    const params = [retention.versions ?? 0, before, before, limit];
    // One write: the sources are recorded exactly for the ops removed.
    return this.writer.write(() => {
      record.run(...params);
      return Number(remove.run(...params).changes);
    });
  }

  /** The highest seq of `src` among this document's compacted ops, or null. */
  async prunedSeq(collection: string, id: string, src: string): Promise<number | null> {
    this.assertOpen();
    const row = this.stmts.prunedSeq.get(collection, id, src) as { seq: number } | undefined;
    return row ? row.seq : null;
  }

  /**
   * `ensure` is a write of this connection: with group commit it joins the turn's
   * transaction, so the cursor is as durable as the op that caused it, before any ack leaves.
   */
  readonly webhookCursors: WebhookCursors = {
    ensure: (target, collection, id, v) => {
      this.writer.write(() => this.stmts.ensureCursor.run(target, collection, id, v));
    },
    advance: async (target, collection, id, to) => {
      this.writer.write(() => this.stmts.advanceCursor.run(to, target, collection, id));
    },
    backlog: async (target) => this.stmts.cursorBacklog.all(target) as Backlog,
  };
}
