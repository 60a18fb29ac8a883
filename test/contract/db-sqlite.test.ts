/**
 * ShareDB's own conformance suites (shipped in the sharedb package) against SqliteDB and
 * SqliteMilestoneDB. Each `create` gets a fresh file in its own temp directory.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fromGenericQuery } from '../../server/storage/mingo-query.js';
import { createSqliteMilestoneDb } from '../../server/storage/sqlite-milestone.js';
import { createSqliteDb } from '../../server/storage/sqlite.js';
import { CONFORMANCE_SCANNER } from '../helpers/conformance.js';
import { DEFAULT_SNAPSHOT_CACHE, type SnapshotCacheOptions } from '../../server/storage/snapshot-cache.js';

const require = createRequire(import.meta.url);
// ShareDB's mocha run loads this first (`file: test/setup.js` in its .mocharc.yml):
// registers sinon-chai, silences ShareDB's logger, restores sinon after each test.
require('sharedb/test/setup.js');

// The suites are untyped JS; `create` may be called with or without an options object.
type Create = (optionsOrCallback: unknown, callback?: (err: Error | null, db?: unknown) => void) => void;
const runDbSuite = require('sharedb/test/db') as (options: { create: Create; getQuery?: unknown }) => void;
const runMilestoneSuite = require('sharedb/test/milestone-db') as (options: { create: Create }) => void;

describe('SqliteDB — ShareDB conformance', function () {
  const dirs: string[] = [];
  function tempDbPath(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-sqlite-contract-'));
    dirs.push(dir);
    return path.join(dir, 'nested', 'tandem.db'); // 'nested' proves the parent is created
  }
  after(function () {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  function withCallback(optionsOrCallback: unknown, callback?: (err: Error | null, db?: unknown) => void) {
    const cb = (typeof optionsOrCallback === 'function' ? optionsOrCallback : callback) as (err: Error | null, db?: unknown) => void;
    const options = (typeof optionsOrCallback === 'function' ? null : optionsOrCallback) as { interval?: number } | null;
    return { cb, options };
  }

  // The snapshot cache as configured by default, off (every commit writes its snapshot), and
  // so small that every read misses and rows lag: rebuilds from the op log on every path.
  const CACHES: Array<[string, SnapshotCacheOptions]> = [
    ['default snapshot cache', DEFAULT_SNAPSHOT_CACHE],
    ['SNAPSHOT_CACHE_MB=0', { ...DEFAULT_SNAPSHOT_CACHE, cacheBytes: 0 }],
    ['a 1-byte cache, snapshots written every 3 versions', { cacheBytes: 1, flushOps: 3, flushMs: 60_000 }],
  ];
  for (const [name, snapshotCache] of CACHES) {
    describe(name, function () {
      runDbSuite({
        create(optionsOrCallback, callback) {
          const { cb } = withCallback(optionsOrCallback, callback);
          let db;
          try {
            db = createSqliteDb({ path: tempDbPath(), snapshotCache, queryScanner: CONFORMANCE_SCANNER });
          } catch (err) {
            return cb(err as Error);
          }
          cb(null, db);
        },
        getQuery: fromGenericQuery,
      });
    });
  }

  runMilestoneSuite({
    create(optionsOrCallback, callback) {
      const { cb, options } = withCallback(optionsOrCallback, callback);
      let db;
      try {
        db = createSqliteMilestoneDb({ path: tempDbPath(), interval: options?.interval });
      } catch (err) {
        return cb(err as Error);
      }
      cb(null, db);
    },
  });
});
