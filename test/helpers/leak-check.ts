/**
 * Root hooks (`require` in .mocharc.json): every test file gives back the sockets, servers,
 * child processes and timers it opened.
 *
 * `npm test` runs files in mocha's parallel workers, which are stopped when the run ends
 * whatever they still hold: a leak would no longer keep the run from exiting, the way it
 * does in one process. So each file is checked here instead, and the file that leaked is
 * the one that fails. Run serially (`--no-parallel`), the check covers the whole run.
 */
import { pendingTimersSince, timerMark, trackTimerOrigins } from './timer-origins.js';
import { waitFor } from './wait.js';

trackTimerOrigins();

/** Active resources that keep the event loop alive, by kind (unref'd timers and sockets are not counted). */
function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

let baseline = new Map<string, number>();
let baselineTimers = 0;

function excess(): string[] {
  return [...resourceCounts()]
    .filter(([kind, n]) => n > (baseline.get(kind) ?? 0))
    .map(([kind, n]) => `${kind}: ${n} now, ${baseline.get(kind) ?? 0} before`);
}

/** Long enough for what closes by itself shortly after a test (engine.io's 1 s upgrade timers, a child's exit). */
const RELEASE_DEADLINE_MS = 10_000;

// Callback-style on purpose: mocha arms its hook timer before calling these, so the baseline
// and the check each see exactly one mocha timer.
export const mochaHooks = {
  beforeAll(done: (err?: Error) => void): void {
    baseline = resourceCounts();
    baselineTimers = timerMark();
    done();
  },
  afterAll(this: Mocha.Context, done: (err?: Error) => void): void {
    // In a parallel worker the root suite holds one file's suites; serially, every file's.
    const files = [...new Set((this.test?.parent?.suites ?? []).map((suite) => suite.file))];
    const where = files.length === 1 && files[0] ? files[0] : 'the test files';
    waitFor(() => excess().length === 0, { timeoutMs: RELEASE_DEADLINE_MS, what: 'sockets, servers, processes and timers released' }).then(
      () => done(),
      (err: Error) => {
        const timers = pendingTimersSince(baselineTimers);
        const origins = timers.length > 0 ? `\n${timers.join('\n')}` : '';
        done(new Error(`${where} left resources open: ${err.message}: ${excess().join(', ')}${origins}`));
      },
    );
  },
};
