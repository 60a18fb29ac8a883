/**
 * What the query executor (server/limits/query-executor.ts) reads from a SQLite store: one
 * short statement at a time, so no cursor stays open between slices of a scan.
 */
import type { ScanCursor, ScanSource } from '../limits/query-executor.js';
import type { QuerySnapshot } from './mingo-query.js';
import type { Connection } from './sqlite-connection.js';
import type { SqliteDocuments, SnapshotRow } from './sqlite-documents.js';
import { HEADED_COLUMNS, HEADED_FROM } from './sqlite-heads.js';

type Row = SnapshotRow & { id: string };

export interface SqliteScanInputs {
  conn: Connection;
  documents: SqliteDocuments;
  /** The store's statement reading snapshot rows by id (a JSON array), with their heads. */
  snapshotBulk: { all(collection: string, idsJson: string): unknown[] };
  /** Throws TANDEM_DB_CLOSED once the store is closed. */
  assertOpen(): void;
  /** One document's current snapshot, metadata included. */
  readSnapshot(collection: string, id: string): QuerySnapshot;
}

export function sqliteScanSource({ conn, documents, snapshotBulk, assertOpen, readSnapshot }: SqliteScanInputs): ScanSource {
  // A collection is read a page at a time in primary-key order, and counted without reading
  // documents, at most up to the scan limit.
  const stmts = {
    livePageFirst: conn.prepare(`SELECT ${HEADED_COLUMNS} FROM ${HEADED_FROM}
      WHERE s.collection = ? AND s.type IS NOT NULL ORDER BY s.id LIMIT ?`),
    livePageAfter: conn.prepare(`SELECT ${HEADED_COLUMNS} FROM ${HEADED_FROM}
      WHERE s.collection = ? AND s.id > ? AND s.type IS NOT NULL ORDER BY s.id LIMIT ?`),
    countLive: conn.prepare(`SELECT count(*) AS n FROM
      (SELECT 1 FROM snapshots WHERE collection = ? AND type IS NOT NULL LIMIT ?)`),
  };
  // Current versions (a row may lag its head), without filling the cache from a scan.
  const live = (collection: string, rows: Row[], withMeta: boolean) =>
    rows.map((row) => documents.current(collection, row.id, withMeta, { row, remember: false }));
  return {
    countLive: (collection, atMost) => {
      assertOpen();
      return (stmts.countLive.get(collection, atMost + 1) as { n: number }).n;
    },
    readIds: (collection, ids, withMeta) => {
      assertOpen();
      const rows = snapshotBulk.all(collection, JSON.stringify(ids)) as Row[];
      const byId = new Map(rows.map((row) => [row.id, row]));
      return live(
        collection,
        ids.flatMap((id) => {
          const row = byId.get(id);
          return row && row.type !== null ? [row] : [];
        }),
        withMeta,
      );
    },
    openCursor: (collection, withMeta): ScanCursor => {
      let after: string | null = null;
      let ended = false;
      return {
        next: (max) => {
          assertOpen();
          if (ended) return null;
          const rows = (
            after === null ? stmts.livePageFirst.all(collection, max) : stmts.livePageAfter.all(collection, after, max)
          ) as Row[];
          if (rows.length < max) ended = true;
          if (rows.length === 0) return null;
          after = rows[rows.length - 1]!.id;
          return live(collection, rows, withMeta);
        },
      };
    },
    readVersion: (collection, id) => {
      assertOpen();
      const head = documents.head(collection, id);
      return head === 0 ? null : head;
    },
    readOne: (collection, id) => {
      assertOpen();
      return readSnapshot(collection, id);
    },
  };
}
