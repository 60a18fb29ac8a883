/**
 * The refusal penalty (REFUSALS_PER_SECOND, default 20, burst twice that), against a server
 * process with the default limits, on both transports: a connection that keeps sending
 * requests the server refuses — frames that are not JSON (refused by the transport) and
 * invalid ops (refused inside ShareDB) — gets its refusals at the budget's pace, not at
 * the pace it sends; a valid request behind them is kept in order and answered once they
 * are; meanwhile /healthz answers and another client keeps committing. The units
 * (RefusalPenalty, FramePacer.hold) are in connection-units.test.ts.
 */
import assert from 'node:assert/strict';
import { loadConfig } from '../../server/config.js';
import { FRAMES_PER_TURN } from '../../server/limits/connection-pacing.js';
import { useServerProcessPerTest } from '../helpers/process-server.js';
import { TRANSPORTS, type Json } from '../integration/bad-input-wire.js';
import { bystander, openAttack, watchHealth } from './limits-watch.js';

const T = 'notes';
const PER_SECOND = loadConfig({}).limits.refusalsPerSecond;
const BURST = 2 * PER_SECOND;
/** Refused requests sent at once: enough to be held for a few seconds. */
const REFUSED = BURST + 4 * PER_SECOND;
/**
 * Requests refused before the hold they cause takes effect: a refusal from inside ShareDB
 * comes back a few turns after its frame was taken, and the pacer takes FRAMES_PER_TURN a turn.
 */
const IN_FLIGHT = FRAMES_PER_TURN;

describe('resilience: the refusal penalty (REFUSALS_PER_SECOND)', function () {
  this.timeout(60_000);
  const fixture = useServerProcessPerTest();

  for (const transport of TRANSPORTS) {
    it(`over ${transport}: refused requests come back at the budget's pace; a valid one behind them is answered in order; others commit`, async () => {
      const url = fixture.server.url;
      const { otherDoc, attacker } = await openAttack(url, transport, T, fixture.closers);
      const health = watchHealth(url, fixture.server.child.pid!);
      const work = bystander(otherDoc);

      const from = attacker.mark();
      const started = performance.now();
      for (let i = 0; i < REFUSED; i++) {
        if (i % 2 === 0) attacker.send(`not json ${i}`);
        // json1 has no `zz` component: refused by Tandem's op validation inside ShareDB.
        else
          attacker.send(
            JSON.stringify({ a: 'op', src: attacker.src, seq: attacker.nextSeq(), c: T, d: 'bystander', v: 1, op: ['n', { zz: 1 }] }),
          );
      }
      attacker.send(JSON.stringify({ a: 'f', c: T, d: 'bystander' }));
      const fetched = await attacker.waitFor(
        (m) => m.a === 'f' && m.d === 'bystander',
        'the fetch behind the refused requests',
        from,
        30_000,
      );
      const answeredMs = performance.now() - started;
      const commitsDuring = (await work.stop()).commits;
      const report = await health.stop();

      const replies = attacker.inbox.slice(from).map((r) => r.msg as Json);
      const refusals = replies.filter((m) => m?.error);
      assert.equal(refusals.length, REFUSED, 'every refused request answered, before the fetch behind it');
      assert.deepEqual([...new Set(refusals.map((m) => m.error.code))].sort(), ['TANDEM_BAD_FRAME', 'TANDEM_INVALID_OP']);
      assert.equal(fetched.error, undefined);
      assert.ok(fetched.data.v >= 1, 'the fetch was answered with the document');
      // Past the burst (and what was in flight), at most PER_SECOND refusals a second.
      const leastMs = ((REFUSED - BURST - IN_FLIGHT) / PER_SECOND) * 1000;
      assert.ok(
        answeredMs >= leastMs,
        `${REFUSED} refusals answered in ${Math.round(answeredMs)} ms, sooner than ${Math.round(leastMs)} ms`,
      );
      assert.equal(fixture.server.child.exitCode, null, 'the server is up');
      assert.ok(report.maxHealthzMs < 1000, `/healthz took ${report.maxHealthzMs} ms`);
      assert.ok(commitsDuring > 0, 'the bystander committed while the attacker was held');
      console.log(
        `      ${transport}: ${REFUSED} refused requests answered over ${Math.round(answeredMs)} ms (at least ${Math.round(leastMs)}); ` +
          `bystander ${commitsDuring} commits meanwhile; /healthz ≤ ${Math.round(report.maxHealthzMs)} ms`,
      );
    });
  }
});
