/**
 * ShareDB's own conformance suites (shipped in the sharedb package) against PostgresDB and
 * PostgresMilestoneDB. Each `create` gets a store on a fresh schema, so no test sees
 * another's data; every schema is dropped at the end.
 *
 * Needs PostgreSQL (PG_TEST_URL, default postgres://postgres@127.0.0.1:5432/test): with
 * CI=true a missing one fails the suite, otherwise it is skipped with the reason printed.
 */
import { createRequire } from 'node:module';
import { fromGenericQuery } from '../../server/storage/mingo-query.js';
import { PostgresMilestoneDB } from '../../server/storage/postgres-milestone.js';
import { PostgresDB } from '../../server/storage/postgres.js';
import { postgresUnavailable, TestSchemas } from '../helpers/postgres.js';
import { requireService } from '../helpers/skip.js';

const require = createRequire(import.meta.url);
// ShareDB's mocha run loads this first (`file: test/setup.js` in its .mocharc.yml):
// registers sinon-chai, silences ShareDB's logger, restores sinon after each test.
require('sharedb/test/setup.js');

// The suites are untyped JS; `create` may be called with or without an options object.
type Create = (optionsOrCallback: unknown, callback?: (err: Error | null, db?: unknown) => void) => void;
const runDbSuite = require('sharedb/test/db') as (options: { create: Create; getQuery?: unknown }) => void;
const runMilestoneSuite = require('sharedb/test/milestone-db') as (options: { create: Create }) => void;

function withCallback(optionsOrCallback: unknown, callback?: (err: Error | null, db?: unknown) => void) {
  const cb = (typeof optionsOrCallback === 'function' ? optionsOrCallback : callback) as (err: Error | null, db?: unknown) => void;
  const options = (typeof optionsOrCallback === 'function' ? null : optionsOrCallback) as { interval?: number } | null;
  return { cb, options };
}

/*
 * How the conformance stores differ from a server's:
 *
 * - No network deadlines (pg's read timeout, the query cancel, the pool's wait for a
 *   connection). ShareDB's suites fake the global clock (sinon) and jump it by seconds to a day
 *   while real statements are in flight; a deadline armed on that clock would fire on a jump
 *   and fail a statement that was answering. postgres-queries.test.ts (the cancel) and
 *   postgres-outage.test.ts (the read timeout) exercise them on a real clock.
 * - One connection. The suites assume statements run in the order they are issued, as MemoryDB
 *   runs them; over several connections PostgreSQL need not (each is its own backend process,
 *   and on a loaded machine one issued later can run first). Traced in a loaded run: a query
 *   subscribe issued before a create read the created document, so "query middleware
 *   pollDebounce option reduces subsequent poll interval" (and its db.pollDebounce twin, seen in
 *   CI) waited for an insert event that never came. Deadlines had been blamed for that hang first.
 */
const CONFORMANCE_STORE = { readTimeoutMs: 0, queryTimeoutMs: 0, connectTimeoutMs: 0, poolMax: 1 } as const;

describe('PostgresDB — ShareDB conformance', function () {
  const schemas = new TestSchemas();

  before(async function () {
    const reason = await postgresUnavailable();
    requireService(this, reason === null, reason ?? '');
  });

  after(async function () {
    // The suites close most stores through Backend.close(); this ends the rest and drops all.
    await schemas.dropAll();
  });

  runDbSuite({
    create(optionsOrCallback, callback) {
      const { cb } = withCallback(optionsOrCallback, callback);
      schemas.store(CONFORMANCE_STORE).then(
        (store) => cb(null, new PostgresDB(store)),
        (err: Error) => cb(err),
      );
    },
    getQuery: fromGenericQuery,
  });

  runMilestoneSuite({
    create(optionsOrCallback, callback) {
      const { cb, options } = withCallback(optionsOrCallback, callback);
      schemas.store(CONFORMANCE_STORE).then(
        (store) => cb(null, new PostgresMilestoneDB({ store, interval: options?.interval })),
        (err: Error) => cb(err),
      );
    },
  });
});
