/**
 * The tables beside SqliteDB's `ops` and `snapshots` that make a commit cost the op (see
 * sqlite-documents.ts): `heads`, moved by a trigger on every op, and the statements that read
 * snapshot rows with their head.
 */
import type { Connection } from './sqlite-connection.js';

export const DOCUMENTS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS heads (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    v INTEGER NOT NULL,   -- the document's current version: its ops are [0, v)
    PRIMARY KEY (collection, id)
  ) WITHOUT ROWID;      -- one b-tree: a commit dirties one page of it, not two
  -- Every op moves its document's head in the op's own statement, so a commit is one
  -- statement (atomic without a savepoint of its own, see SqliteDB.commitOp).
  CREATE TRIGGER IF NOT EXISTS ops_move_head AFTER INSERT ON ops BEGIN
    INSERT INTO heads (collection, id, v) VALUES (NEW.collection, NEW.id, NEW.v + 1)
      ON CONFLICT (collection, id) DO UPDATE SET v = excluded.v WHERE excluded.v > heads.v;
  END;
`;

/**
 * A commit in one statement: the op row goes in only if the document's head is the op's
 * version (?7, ?8, ?9 = collection, id, v), and the trigger above moves the head.
 */
export const INSERT_OP_AT_HEAD_SQL = `INSERT INTO ops (collection, id, v, src, seq, op)
  SELECT ?, ?, ?, ?, ?, ? WHERE coalesce((SELECT v FROM heads WHERE collection = ? AND id = ?), 0) = ?`;

/** Creates `heads` and, on a file written before it existed, fills it from the snapshots. */
export function migrateDocuments(conn: Connection): void {
  const existed = conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'heads'").get() !== undefined;
  conn.exec(DOCUMENTS_SCHEMA);
  // Until now every commit wrote its snapshot, so the snapshot's version is the head.
  if (!existed) conn.exec('INSERT INTO heads (collection, id, v) SELECT collection, id, v FROM snapshots');
}

/** The SELECT list of statements that read snapshot rows with their head (alias `s`, `h`). */
export const HEADED_COLUMNS = 's.id, s.v, s.type, s.data, s.metadata, h.v AS head';
export const HEADED_FROM = 'snapshots s LEFT JOIN heads h ON h.collection = s.collection AND h.id = s.id';
