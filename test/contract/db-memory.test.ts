/** ShareDB's own conformance suites against memory.ts (MemoryDB + mingo-query). */
import { createRequire } from 'node:module';
import { createMemoryDb, createMemoryMilestoneDb } from '../../server/storage/memory.js';
import { fromGenericQuery } from '../../server/storage/mingo-query.js';
import { CONFORMANCE_SCANNER } from '../helpers/conformance.js';

const require = createRequire(import.meta.url);
// ShareDB's mocha run loads this first (`file: test/setup.js` in its .mocharc.yml):
// registers sinon-chai, silences ShareDB's logger, restores sinon after each test.
require('sharedb/test/setup.js');

type Create = (optionsOrCallback: unknown, callback?: (err: Error | null, db?: unknown) => void) => void;
const runDbSuite = require('sharedb/test/db') as (options: { create: Create; getQuery?: unknown }) => void;
const runMilestoneSuite = require('sharedb/test/milestone-db') as (options: { create: Create }) => void;

describe('memory storage — ShareDB conformance', function () {
  runDbSuite({
    create(optionsOrCallback, callback) {
      const cb = (typeof optionsOrCallback === 'function' ? optionsOrCallback : callback) as (err: Error | null, db?: unknown) => void;
      cb(null, createMemoryDb({ queryScanner: CONFORMANCE_SCANNER }));
    },
    getQuery: fromGenericQuery,
  });

  runMilestoneSuite({
    create(optionsOrCallback, callback) {
      const cb = (typeof optionsOrCallback === 'function' ? optionsOrCallback : callback) as (err: Error | null, db?: unknown) => void;
      const options = (typeof optionsOrCallback === 'function' ? null : optionsOrCallback) as { interval?: number } | null;
      cb(null, createMemoryMilestoneDb(options?.interval));
    },
  });
});
