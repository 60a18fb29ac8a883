import type { ScannerOptions } from '../../server/limits/query-scan.js';

/**
 * The query scanner for stores under ShareDB's conformance suites. Those suites fake
 * setTimeout (sinon) and move the clock only by their own ticks; the scanner pauses before its
 * next slice with a timer once a slice took a millisecond or more, which a loaded machine
 * makes happen, and a queued poll then waits for a tick that never comes (seen in a full run
 * in parallel workers: "query middleware pollInterval updates a subscribed query after an
 * unpublished create" timed out). Without the pause, slices follow on setImmediate, which the
 * suites leave real. test/unit/query-scan-timers.test.ts shows both behaviours.
 */
export const CONFORMANCE_SCANNER: ScannerOptions = { pauseRatio: 0 };
