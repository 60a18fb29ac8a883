import assert from 'node:assert/strict';
import { setTimeout as importedSetTimeout } from 'node:timers';
import { pendingTimersSince, timerMark, trackTimerOrigins } from '../helpers/timer-origins.js';

describe('leak check: where pending timers were created', () => {
  before(trackTimerOrigins);

  it('names the creating code of a pending timer, global or imported from node:timers, until it is cleared', () => {
    const mark = timerMark();
    const global = setTimeout(() => undefined, 60_000);
    const imported = importedSetTimeout(() => undefined, 60_000);
    try {
      const report = pendingTimersSince(mark);
      assert.equal(report.length, 2, report.join('\n'));
      for (const entry of report) assert.match(entry, /^1 timer\(s\) created at\n {4}at .*timer-origins\.test\.ts/);
    } finally {
      clearTimeout(global);
      clearTimeout(imported);
    }
    assert.deepEqual(pendingTimersSince(mark), []);
  });

  it('leaves out timers that fired, were unref’d, or were created before the mark', async () => {
    const before = setTimeout(() => undefined, 60_000);
    const mark = timerMark();
    const unrefd = setTimeout(() => undefined, 60_000).unref();
    await new Promise((resolve) => setTimeout(resolve, 1));
    try {
      assert.deepEqual(pendingTimersSince(mark), []);
    } finally {
      clearTimeout(before);
      clearTimeout(unrefd);
    }
  });
});
