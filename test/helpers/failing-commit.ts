/**
 * Makes every COMMIT on a SqliteDB's connection fail, as a full disk or an I/O error would.
 * The connection is private to the adapter, so it is reached through a cast here, once.
 * Returns the function that restores it.
 */
export function failCommits(db: unknown): () => void {
  const conn = (db as { conn: { exec(sql: string): unknown } }).conn;
  const exec = conn.exec.bind(conn);
  conn.exec = (sql: string) => {
    if (sql === 'COMMIT') throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
    return exec(sql);
  };
  return () => {
    conn.exec = exec;
  };
}
