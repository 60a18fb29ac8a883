import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type sinon from 'sinon';
import { QueryScanner, type ScanJob, type ScannerOptions } from '../../server/limits/query-scan.js';
import { CONFORMANCE_SCANNER } from '../helpers/conformance.js';

// The clock the conformance suites fake, faked by their own helper (setTimeout, setInterval and Date; not setImmediate).
const { useFakeTimers } = createRequire(import.meta.url)('sharedb/test/util.js') as { useFakeTimers: () => sinon.SinonFakeTimers };

/** A job that needs two steps, each busy for `ms` of real time (performance.now() is not faked). */
function slowJob(ms: number): ScanJob<string> {
  let steps = 0;
  return {
    step(): boolean {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // busy: the slice must take at least a millisecond
      }
      return ++steps === 2;
    },
    result: () => 'done',
  };
}

/** Runs two such queries under the suites' faked clock; resolves with how many answered before `waitMs` of real time. */
async function answeredWithFakeTimers(options: ScannerOptions, waitMs: number): Promise<number> {
  const clock = useFakeTimers();
  try {
    const scanner = new QueryScanner(options);
    let answered = 0;
    const settled = new Promise<void>((resolve) => {
      for (const owner of ['a', 'b']) {
        scanner.submit(
          owner,
          null,
          () => slowJob(2),
          () => {
            if (++answered === 2) resolve();
          },
        );
      }
    });
    // Real time, through setImmediate (left real): a faked timer would never fire here.
    const deadline = performance.now() + waitMs;
    while (answered < 2 && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    const answeredInTime = answered;
    if (answered < 2) {
      clock.tick(1_000); // let the paused scanner finish, so nothing is left behind
      await settled;
    }
    return answeredInTime;
  } finally {
    clock.restore();
  }
}

describe('query scanner under a faked clock (ShareDB conformance suites)', () => {
  it('with its default pause, a slice of a millisecond or more parks the next one on a timer: a faked clock stalls it', async () => {
    assert.ok((await answeredWithFakeTimers({}, 200)) < 2);
  });

  it('with CONFORMANCE_SCANNER (pauseRatio 0), slices follow on setImmediate and every query is answered', async () => {
    assert.equal(await answeredWithFakeTimers(CONFORMANCE_SCANNER, 2_000), 2);
  });
});
