interface AdapterInternals {
  conn: { exec(sql: string): unknown; inTransaction: boolean };
  stmts: { insertOpAtHead: { run(...args: unknown[]): unknown } };
}

/** The adapter's connection and statements are private: reached through this one cast. */
const internals = (db: unknown): AdapterInternals => db as AdapterInternals;

/**
 * Makes every commit on a SqliteDB's connection fail, as a full disk or an I/O error would: a
 * COMMIT, and an op row's statement that commits on its own (outside a transaction, see
 * SqliteWriter.writeStatement). The connection and statement are private to the adapter, so
 * they are reached through a cast here, once. Returns the function that restores them.
 */
export function failCommits(db: unknown): () => void {
  const { conn, stmts } = internals(db);
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

/**
 * Makes the next op-row statement fail as SQLite may fail a statement inside a transaction
 * (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM, SQLITE_BUSY): it rolls back the whole
 * transaction by itself, then reports the statement's error. Returns the restore function.
 */
export function rollBackWithNextStatement(db: unknown): () => void {
  const { conn, stmts } = internals(db);
  const statement = stmts.insertOpAtHead;
  const run = statement.run.bind(statement);
  statement.run = () => {
    statement.run = run;
    conn.exec('ROLLBACK');
    throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  };
  return () => {
    statement.run = run;
  };
}
