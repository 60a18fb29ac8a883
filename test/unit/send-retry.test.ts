/**
 * When a document sends again after the server kept one of its ops (client/send-retry.ts):
 * the backoff and its maxRetries bound, a rate limit's wait, the hold for a fresh token.
 * A real SendGate over a stand-in for ShareDB's doc shows when sending is held; sinon's
 * clock runs the waits.
 */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import { TandemError, TandemErrorCode } from '../../client/protocol.js';
import { SendGate } from '../../client/send-gate.js';
import { SendRetry } from '../../client/send-retry.js';
import type { DocInternals, QueuedOp } from '../../client/sharedb-internals.js';

interface Harness {
  retries: SendRetry;
  gate: SendGate;
  /** True while ShareDB's doc is paused (something holds sending). */
  readonly paused: boolean;
  /** How often sending resumed. */
  readonly resumes: number;
  stalls: TandemError[];
  reports: TandemError[];
  /** The op at the head of the queue. */
  head: QueuedOp | undefined;
  reauthenticate: sinon.SinonStub<[], Promise<void>>;
}

const RETRY_DELAY_MS = 100;
const MAX_RETRIES = 3;
const failure = new TandemError(TandemErrorCode.STORAGE_ERROR, 'the store failed');

function harness(): Harness {
  const doc = {
    paused: false,
    resumes: 0,
    pause() {
      this.paused = true;
    },
    resume() {
      this.paused = false;
      this.resumes++;
    },
  };
  // SendGate reads only paused, pause() and resume() of ShareDB's doc.
  const gate = new SendGate(doc as unknown as DocInternals);
  const h: Harness = {
    gate,
    get paused() {
      return doc.paused;
    },
    get resumes() {
      return doc.resumes;
    },
    stalls: [],
    reports: [],
    head: { src: 'a', seq: 1 } as QueuedOp,
    reauthenticate: sinon.stub<[], Promise<void>>().resolves(),
    retries: undefined as unknown as SendRetry,
  };
  h.retries = new SendRetry({
    ctx: { retryDelayMs: RETRY_DELAY_MS, maxRetries: MAX_RETRIES, reauthenticate: () => h.reauthenticate() },
    gate,
    head: () => h.head,
    stall: (error) => h.stalls.push(error),
    report: (error) => h.reports.push(error),
  });
  return h;
}

describe('SendRetry (client/send-retry.ts)', function () {
  let clock: sinon.SinonFakeTimers;
  beforeEach(function () {
    clock = sinon.useFakeTimers();
  });
  afterEach(function () {
    clock.restore();
  });

  it('backs off exponentially per op and stalls once the op failed more than maxRetries times', function () {
    const h = harness();
    for (let attempt = 1; attempt <= MAX_RETRIES; attempt++) {
      h.retries.backOff(failure);
      const wait = RETRY_DELAY_MS * 2 ** (attempt - 1);
      clock.tick(wait - 1);
      assert.equal(h.paused, true, `still held 1 ms before the ${wait} ms wait of attempt ${attempt}`);
      clock.tick(1);
      assert.equal(h.paused, false, `sending again after attempt ${attempt}'s wait`);
    }
    assert.deepEqual(h.stalls, []);
    h.retries.backOff(failure);
    assert.deepEqual(h.stalls, [failure], 'the attempt past maxRetries stalls instead of waiting');
    assert.equal(clock.countTimers(), 0);
  });

  it('counts each op on its own, and starts over after resetAttempts', function () {
    const h = harness();
    h.retries.backOff(failure);
    clock.tick(RETRY_DELAY_MS);
    const firstWaitReleases = (why: string) => {
      h.retries.backOff(failure);
      clock.tick(RETRY_DELAY_MS - 1);
      assert.equal(h.paused, true, why);
      clock.tick(1);
      assert.equal(h.paused, false, `${why}: released after ${RETRY_DELAY_MS} ms`);
    };
    h.head = { src: 'a', seq: 2 } as QueuedOp;
    firstWaitReleases('another op waits its own first backoff');
    h.head = { src: 'a', seq: 1 } as QueuedOp;
    h.retries.resetAttempts();
    firstWaitReleases('after resetAttempts the first op starts over');
  });

  it('waits what a rate limit asked for, or backs off to at most 60 s when it named no wait', function () {
    const h = harness();
    h.retries.waitForBudget(1234);
    clock.tick(1233);
    assert.equal(h.paused, true);
    clock.tick(1);
    assert.equal(h.paused, false);
    let waited = 0;
    for (let i = 0; i < 12; i++) {
      h.retries.waitForBudget(null);
      const start = clock.now;
      while (h.paused) clock.next();
      waited = clock.now - start;
    }
    assert.equal(waited, 60_000, 'the fallback backoff is capped');
    h.retries.waitForBudget(50);
    clock.tick(50);
    assert.equal(h.paused, false, 'a named wait replaces the backoff');
    h.retries.waitForBudget(null);
    clock.tick(RETRY_DELAY_MS);
    assert.equal(h.paused, false, 'and starts the fallback count over');
    assert.deepEqual(h.stalls, [], 'a rate limit never stalls');
  });

  it('holds sending until a fresh token reached the server, asking once', async function () {
    const h = harness();
    let handOver!: () => void;
    h.reauthenticate.returns(new Promise<void>((resolve) => (handOver = resolve)));
    h.retries.awaitToken();
    h.retries.awaitToken();
    assert.equal(h.reauthenticate.callCount, 1);
    assert.equal(h.paused, true);
    handOver();
    await clock.tickAsync(0);
    assert.equal(h.paused, false);
    assert.deepEqual(h.reports, []);
  });

  it('reports a token that could not be had, and sends again', async function () {
    const h = harness();
    const refused = new TandemError(TandemErrorCode.TOKEN_FAILED, 'no token');
    h.reauthenticate.rejects(refused);
    h.retries.awaitToken();
    await clock.tickAsync(0);
    assert.equal(h.paused, false);
    assert.deepEqual(h.reports, [refused]);
  });

  it('cancel stops the wait and keeps sending held; forget lets it resume', function () {
    const h = harness();
    h.retries.backOff(failure);
    h.retries.cancel();
    assert.equal(clock.countTimers(), 0);
    assert.equal(h.paused, true, 'a closing handle stays held');
    h.retries.forget();
    assert.equal(h.paused, false);
    assert.equal(h.resumes, 1);
  });
});
