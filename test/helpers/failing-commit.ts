/**
 * Makes every commit on a SqliteDB's connection fail, as a full disk or an I/O error would: a
 * COMMIT, and an op row's statement that commits on its own (outside a transaction, see
 * SqliteWriter.writeStatement). The connection and statement are private to the adapter, so
 * they are reached through a cast here, once. Returns the function that restores them.
 */
export function failCommits(db: unknown): () => void {
  const { conn, stmts } = db as {
    conn: { exec(sql: string): unknown; inTransaction: boolean };
    stmts: { insertOpAtHead: { run(...args: unknown[]): unknown } };
  };
  const ioError = () => Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
  const exec = conn.exec.bind(conn);
  const statement = stmts.insertOpAtHead;
  const run = statement.run.bind(statement);
  conn.exec = (sql: string) => {
    if (sql === 'COMMIT') throw ioError();
    return exec(sql);
  };
  statement.run = (...args: unknown[]) => {
    if (!conn.inTransaction) throw ioError();
    return run(...args);
  };
  return () => {
    conn.exec = exec;
    statement.run = run;
  };
}
