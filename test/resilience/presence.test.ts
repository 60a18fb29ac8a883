/**
 * Presence limits (server/limits/presence.ts), each refused with its code on both
 * transports through ShareDB's own presence API (and raw messages where a hostile client
 * would write them), while ordinary cursors keep flowing. The attacks these limits answer
 * run against a server process in presence-attacks.test.ts.
 */
import assert from 'node:assert/strict';
import { ShareDbErrorCode, TandemErrorCode } from '../../client/protocol.js';
import { MAX_PRESENCE_IDS_PER_CHANNEL } from '../../server/limits/presence.js';
import { TokenBucket } from '../../server/limits/presence-bucket.js';
import { RequestPacer } from '../../server/limits/presence-requests.js';
import { jsonByteLength } from '../../server/limits/presence-size.js';
import { Rng } from '../fuzz/rng.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import {
  TRANSPORTS,
  callback,
  cursorAt,
  errorsWith,
  joinPresence,
  openClient,
  presenceMessage,
  sendRaw,
  submitPresence,
  type Cursor,
  type Transport,
} from './presence-clients.js';

const C = 'notes';
const MAX_PRESENCE_BYTES = 1024;
const PRESENCE_PER_SECOND = 10;
const PRESENCE_MAX_LAG = 10;
const TEXT = 'hello presence';

function other(transport: Transport): Transport {
  return transport === 'sharedb' ? 'socket.io' : 'sharedb';
}

describe('resilience: presence limits', function () {
  this.timeout(30_000);
  let server: TestServer;
  const closers: Array<() => Promise<void>> = [];
  let docCount = 0;

  before(async () => {
    server = await startTestServer({
      MAX_PRESENCE_BYTES: String(MAX_PRESENCE_BYTES),
      PRESENCE_PER_SECOND: String(PRESENCE_PER_SECOND),
      PRESENCE_MAX_LAG: String(PRESENCE_MAX_LAG),
    });
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  after(async () => {
    await server?.close();
  });

  /** A fresh document created by the application itself (exempt from every limit). */
  async function freshDoc(): Promise<string> {
    const id = `doc-${++docCount}`;
    const doc = server.backend.connect().get(C, id);
    await callback((done) => doc.create({ text: TEXT, n: 0 }, 'json1', done));
    return id;
  }

  /** Commits `count` ops as the application (history for the lag tests). */
  async function serverOps(id: string, count: number): Promise<void> {
    const doc = server.backend.connect().get(C, id);
    await callback((done) => doc.fetch(done));
    for (let i = 0; i < count; i++) await callback((done) => doc.submitOp(['n', { ena: 1 }], {}, done));
  }

  async function pair(transport: Transport, id: string) {
    const alice = await openClient(server.url, transport, closers);
    const bob = await openClient(server.url, other(transport), closers);
    const a = await joinPresence(alice, C, id);
    const b = await joinPresence(bob, C, id);
    return { alice, bob, a, b, local: a.presence.create('alice-cursor') };
  }

  for (const transport of TRANSPORTS) {
    describe(`over ${transport}`, () => {
      it('a value over MAX_PRESENCE_BYTES (JSON bytes) is refused with TANDEM_PRESENCE_TOO_LARGE; one at the limit is delivered', async () => {
        const { alice, b, local } = await pair(transport, await freshDoc());
        const base = JSON.stringify(cursorAt(1, 'alice', '')).length;
        const exact = cursorAt(1, 'alice', 'x'.repeat(MAX_PRESENCE_BYTES - base));
        assert.equal(Buffer.byteLength(JSON.stringify(exact)), MAX_PRESENCE_BYTES);
        const oneOver = cursorAt(1, 'alice', 'x'.repeat(MAX_PRESENCE_BYTES - base + 1));
        // Under the limit in characters, over it in UTF-8 bytes.
        const wide = cursorAt(1, 'alice', 'é'.repeat(MAX_PRESENCE_BYTES - base));
        const huge = cursorAt(1, 'alice', 'x'.repeat(200_000));

        assert.equal(await submitPresence(local, oneOver), TandemErrorCode.PRESENCE_TOO_LARGE);
        assert.equal(await submitPresence(local, wide), TandemErrorCode.PRESENCE_TOO_LARGE);
        assert.equal(await submitPresence(local, huge), TandemErrorCode.PRESENCE_TOO_LARGE);
        assert.equal(errorsWith(alice, TandemErrorCode.PRESENCE_TOO_LARGE).length, 3, 'refusals on the wire');
        assert.ok(
          errorsWith(alice, TandemErrorCode.PRESENCE_TOO_LARGE).every((m) => m.p === undefined),
          'the refused value is not echoed back',
        );
        assert.equal(await submitPresence(local, exact), null);
        await waitFor(() => b.presence.remotePresences['alice-cursor']?.user.pad === exact.user.pad, {
          what: 'the value at the limit at bob',
        });
      });

      it('more than PRESENCE_PER_SECOND (burst twice that) is refused with TANDEM_RATE_LIMITED and retryAfterMs; after the wait presence is accepted', async () => {
        const { alice, b, local } = await pair(transport, await freshDoc());
        const results = await Promise.all(
          Array.from({ length: 3 * PRESENCE_PER_SECOND }, (_, i) => submitPresence(local, cursorAt(i % 10, 'alice'))),
        );
        const accepted = results.filter((r) => r === null).length;
        const limited = results.filter((r) => r === TandemErrorCode.RATE_LIMITED).length;
        assert.equal(accepted + limited, results.length, `only accepted or rate limited: ${results.join(',')}`);
        assert.ok(
          accepted >= 2 * PRESENCE_PER_SECOND && accepted <= 2 * PRESENCE_PER_SECOND + 3,
          `burst of ${2 * PRESENCE_PER_SECOND}, accepted ${accepted}`,
        );
        const wire = errorsWith(alice, TandemErrorCode.RATE_LIMITED);
        assert.equal(wire.length, limited);
        for (const reply of wire) {
          const wait = reply.error?.retryAfterMs;
          assert.ok(typeof wait === 'number' && wait > 0 && wait <= 1000 / PRESENCE_PER_SECOND, `retryAfterMs ${wait}`);
        }
        const retryAfterMs = wire[0]!.error!.retryAfterMs!;
        const final = cursorAt(TEXT.length, 'alice');
        await waitFor(async () => (await submitPresence(local, final)) === null, {
          intervalMs: retryAfterMs,
          what: 'presence accepted again',
        });
        await waitFor(() => b.presence.remotePresences['alice-cursor']?.anchor === TEXT.length, { what: 'the final cursor at bob' });
      });

      it('presence more than PRESENCE_MAX_LAG versions behind is refused with TANDEM_PRESENCE_STALE; at the current version it is delivered; a null from any version clears', async () => {
        const id = await freshDoc();
        const alice = await openClient(server.url, transport, closers);
        const bob = await openClient(server.url, other(transport), closers);
        const b = await joinPresence(bob, C, id);
        // Alice fetched the document once and did not follow it: her presence carries that version.
        const doc = alice.connection.get(C, id);
        await callback((done) => doc.fetch(done));
        const local = alice.connection.getDocPresence(C, id).create('alice-cursor');
        await serverOps(id, PRESENCE_MAX_LAG + 5);
        assert.equal(await submitPresence(local, cursorAt(2, 'alice')), TandemErrorCode.PRESENCE_STALE);
        const [refusal] = errorsWith(alice, TandemErrorCode.PRESENCE_STALE);
        assert.match(refusal!.error!.message!, /15 versions behind/);

        // Raw, from a connection ShareDB follows no version for: v 0, set and cleared.
        const mallory = await openClient(server.url, transport, closers);
        sendRaw(mallory, presenceMessage({ c: C, d: id, id: 'm', pv: 0, v: 0, p: cursorAt(0, 'mallory') }));
        sendRaw(mallory, presenceMessage({ c: C, d: id, id: 'm', pv: 1, v: 0, p: null }));
        await waitFor(() => errorsWith(mallory, TandemErrorCode.PRESENCE_STALE).length === 2, { what: 'both stale refusals' });

        // Within the lag it is accepted (and moved to the current version by the server).
        await callback((done) => doc.fetch(done));
        await serverOps(id, PRESENCE_MAX_LAG - 2);
        assert.equal(await submitPresence(local, cursorAt(3, 'alice')), null);
        await waitFor(() => b.presence.remotePresences['alice-cursor']?.anchor === 3, { what: "alice's cursor at bob" });
        // Clearing works from any version once ShareDB follows the document for her.
        await serverOps(id, PRESENCE_MAX_LAG + 5);
        sendRaw(alice, presenceMessage({ c: C, d: id, id: 'alice-cursor', pv: 100, v: 0, p: null }));
        await waitFor(() => !('alice-cursor' in b.presence.remotePresences), { what: "alice's cursor gone at bob" });
        assert.equal(errorsWith(alice, TandemErrorCode.PRESENCE_STALE).length, 1, 'the clear was not refused');
        assert.deepEqual(Object.keys(b.presence.remotePresences), [], 'mallory never showed up');
      });

      it('cursor updates at typing rate are all accepted and delivered, with the text', async () => {
        const { alice, bob, a, b, local } = await pair(transport, await freshDoc());
        const keystrokes = 24;
        for (let i = 0; i < keystrokes; i++) {
          const at = TEXT.length + i;
          a.doc.submitOp(['text', { es: [at, 'k'] }]);
          assert.equal(await submitPresence(local, cursorAt(at + 1, 'alice')), null, `keystroke ${i}`);
          // A typist's cadence (~9 keys a second, under PRESENCE_PER_SECOND), not a wait for something.
          await new Promise((resolve) => setTimeout(resolve, 110));
        }
        const end = TEXT.length + keystrokes;
        await waitFor(
          () => b.presence.remotePresences['alice-cursor']?.anchor === end && (b.doc.data as { text: string }).text.length === end,
          {
            what: 'bob has the text and the cursor at its end',
          },
        );
        assert.equal(alice.received.filter((m) => m.error).length, 0, 'no refusal');
        const delivered = bob.received.filter((m) => m.a === 'p' && m.id === 'alice-cursor' && !m.error).length;
        assert.ok(delivered >= keystrokes, `bob received ${delivered} of ${keystrokes} cursor updates`);
      });

      it('what a connection holds is bounded: presence ids per channel, and malformed presence gets a code', async () => {
        const id = await freshDoc();
        const alice = await openClient(server.url, transport, closers);
        const bob = await openClient(server.url, other(transport), closers);
        const b = await joinPresence(bob, C, id);
        const doc = alice.connection.get(C, id);
        await callback((done) => doc.fetch(done));
        const v = doc.version!;
        for (let i = 0; i <= MAX_PRESENCE_IDS_PER_CHANNEL; i++)
          sendRaw(alice, presenceMessage({ c: C, d: id, id: `id-${i}`, pv: 0, v, p: cursorAt(i, 'alice') }));
        await waitFor(() => errorsWith(alice, TandemErrorCode.TOO_MANY_SUBSCRIPTIONS).length === 1, { what: 'one refusal' });
        assert.equal(errorsWith(alice, TandemErrorCode.TOO_MANY_SUBSCRIPTIONS)[0]!.id, `id-${MAX_PRESENCE_IDS_PER_CHANNEL}`);
        await waitFor(() => Object.keys(b.presence.remotePresences).length === MAX_PRESENCE_IDS_PER_CHANNEL, {
          what: 'the accepted ones at bob',
        });
        // Clearing one makes room for another.
        sendRaw(alice, presenceMessage({ c: C, d: id, id: 'id-0', pv: 1, v, p: null }));
        sendRaw(alice, presenceMessage({ c: C, d: id, id: 'id-new', pv: 0, v, p: cursorAt(1, 'alice') }));
        await waitFor(() => b.presence.remotePresences['id-new'] && !b.presence.remotePresences['id-0'], {
          what: 'id-0 replaced by id-new',
        });

        // A fresh connection, so that the rate limit is not what answers.
        const carol = await openClient(server.url, transport, closers);
        const malformed: Array<[Record<string, unknown>, string]> = [
          [{ ...presenceMessage({ c: C, d: id, id: 'x', pv: 0, v, p: null }), ch: `${C}.elsewhere` }, ShareDbErrorCode.BADLY_FORMED],
          [presenceMessage({ c: C, d: id, id: 'x', pv: 0, v: null, p: cursorAt(0, 'x') }), ShareDbErrorCode.BADLY_FORMED],
          [presenceMessage({ c: C, d: id, id: 'x'.repeat(600), pv: 0, v, p: cursorAt(0, 'x') }), TandemErrorCode.INVALID_ID],
        ];
        for (const [message, code] of malformed) {
          const before = errorsWith(carol, code).length;
          sendRaw(carol, message);
          await waitFor(() => errorsWith(carol, code).length === before + 1, {
            what: `${code} for ${JSON.stringify(message).slice(0, 80)}`,
          });
        }
      });

      it('re-send requests (pr): one round per channel per interval (later ones folded into one at its end), and their own, smaller rate per connection', async () => {
        const { bob, b, local } = await pair(transport, await freshDoc());
        assert.equal(await submitPresence(local, cursorAt(1, 'alice')), null);
        await waitFor(() => b.presence.remotePresences['alice-cursor'], { what: "alice's cursor at bob" });
        const fromAlice = () => bob.received.filter((m) => m.a === 'p' && m.id === 'alice-cursor' && !m.error).length;
        const before = fromAlice();
        const requests = 2 * PRESENCE_PER_SECOND;
        for (let i = 0; i < requests; i++) sendRaw(bob, { a: 'pr', ch: b.presence.channel });
        const answered = () => bob.received.filter((m) => (m.a === 'pr' && (m.error || m.ch === undefined)) || m.a === 'pp').length;
        await waitFor(() => answered() >= requests, { what: `every pr answered (${answered()})` });
        // One round now; the requests inside the interval are not dropped (a late joiner may
        // have sent one) but folded into one more round at the interval's end.
        await waitFor(() => fromAlice() - before >= 2, { what: `the deferred round (${fromAlice() - before} re-sends)` });
        // A marker after the rounds: any re-send made before it has arrived with it.
        assert.equal(await submitPresence(local, cursorAt(5, 'alice')), null);
        await waitFor(() => b.presence.remotePresences['alice-cursor']?.anchor === 5, { what: 'the marker at bob' });
        assert.equal(fromAlice() - before - 1, 2, `alice re-sent twice (a round and the deferred round) for ${requests} requests`);

        const limited = errorsWith(bob, TandemErrorCode.RATE_LIMITED);
        assert.ok(limited.length >= PRESENCE_PER_SECOND - 2, `${limited.length} refused by the per-connection rate`);
        assert.ok(limited.every((m) => m.a === 'pr' && (m.error?.retryAfterMs ?? 0) > 0));
        const coalesced = bob.received.filter((m) => m.a === 'pp').length;
        assert.ok(coalesced >= PRESENCE_PER_SECOND - 2, `${coalesced} answered without a round`);
      });
    });
  }

  it("the application's own connections are exempt", async () => {
    const id = await freshDoc();
    const bob = await openClient(server.url, 'sharedb', closers);
    const b = await joinPresence(bob, C, id);
    const connection = server.backend.connect();
    const doc = connection.get(C, id);
    await callback((done) => doc.subscribe(done));
    const local = connection.getDocPresence(C, id).create('app');
    const results = await Promise.all(
      Array.from({ length: 5 * PRESENCE_PER_SECOND }, (_, i) => submitPresence(local, cursorAt(i % 10, 'app'))),
    );
    assert.deepEqual(
      results.filter((r) => r !== null),
      [],
    );
    assert.equal(await submitPresence(local, cursorAt(1, 'app', 'x'.repeat(2 * MAX_PRESENCE_BYTES))), null);
    await waitFor(() => (b.presence.remotePresences.app as Cursor | null)?.user.pad?.length === 2 * MAX_PRESENCE_BYTES, {
      what: 'the large value at bob',
    });
  });
});

describe('resilience: presence limits, units', () => {
  /** A random JSON value as JSON.parse would give it (keys and strings with escapes and astral characters). */
  function randomJson(rng: Rng, depth: number): unknown {
    const text = () =>
      Array.from({ length: rng.int(12) }, () => rng.pick(['a', 'é', '"', '\\', '\n', '\u0001', '😀', '\u2028', ' '])).join('');
    switch (depth <= 0 ? rng.int(4) : rng.int(6)) {
      case 0:
        return text();
      case 1:
        return rng.pick([0, -1.5, 1e21, 123456789, 5e-324, -0]);
      case 2:
        return rng.pick([true, false, null]);
      case 3:
        return rng.int(2) ? text() : rng.int(1000);
      case 4:
        return Array.from({ length: rng.int(5) }, () => randomJson(rng, depth - 1));
      default:
        return Object.fromEntries(Array.from({ length: rng.int(5) }, () => [text(), randomJson(rng, depth - 1)]));
    }
  }

  it('jsonByteLength is the UTF-8 size of JSON.stringify up to the limit, and limit + 1 past it (seed 7)', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 2000; i++) {
      const value = JSON.parse(JSON.stringify(randomJson(rng, 4))) as unknown;
      const bytes = Buffer.byteLength(JSON.stringify(value));
      const limit = rng.pick([0, 1, 10, 64, 300, 100_000, Math.max(0, bytes - 1), bytes, bytes + 1]);
      const expected = bytes > limit ? limit + 1 : bytes;
      assert.equal(jsonByteLength(value, limit), expected, `seed 7, case ${i}: ${JSON.stringify(value)} limit ${limit}`);
    }
  });

  it('jsonByteLength stops early on a huge value', () => {
    const huge = { a: 'x'.repeat(5_000_000), b: Array.from({ length: 200_000 }, (_, i) => i) };
    const started = performance.now();
    assert.equal(jsonByteLength(huge, 16 * 1024), 16 * 1024 + 1);
    assert.ok(performance.now() - started < 200, 'without serialising the value');
  });

  it('TokenBucket: a burst of its capacity, then its rate; waits say when; charges leave a debt', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 20, () => now);
    for (let i = 0; i < 20; i++) assert.equal(bucket.take(), 0);
    assert.equal(bucket.take(), 100);
    now += 50;
    assert.equal(bucket.take(), 50);
    now += 50;
    assert.equal(bucket.take(), 0);
    bucket.charge(5);
    assert.equal(bucket.take(), 600);
    now += 10_000;
    for (let i = 0; i < 20; i++) assert.equal(bucket.take(), 0, 'refilled to its capacity, not beyond');
    assert.ok(bucket.take() > 0);
  });

  it('RequestPacer: one round per channel per interval; idle channels are swept', () => {
    let now = 0;
    const pacer = new RequestPacer(500, 3, () => now);
    assert.equal(pacer.admit('a'), true);
    assert.equal(pacer.admit('a'), false);
    assert.equal(pacer.admit('b'), true);
    now += 499;
    assert.equal(pacer.admit('a'), false);
    now += 1;
    assert.equal(pacer.admit('a'), true);
    assert.equal(pacer.admit('c'), true);
    now += 500;
    // Full (3): the sweep drops every channel idle for the interval before adding 'd'.
    assert.equal(pacer.admit('d'), true);
    assert.equal((pacer as unknown as { lastRound: Map<string, number> }).lastRound.size, 1);
  });

  it('RequestPacer: a request inside the interval is served by one deferred round at its end', async () => {
    let now = 0;
    const pacer = new RequestPacer(40, 10_000, () => now);
    const rounds: string[] = [];
    assert.equal(pacer.admit('a'), true);
    now = 10;
    assert.equal(pacer.admit('a'), false);
    assert.equal(
      pacer.defer('a', () => rounds.push('a')),
      true,
    );
    assert.equal(
      pacer.defer('a', () => rounds.push('a again')),
      false,
      'one deferred round serves every request of the interval',
    );
    await waitFor(() => rounds.length > 0, { what: 'the deferred round' });
    assert.deepEqual(rounds, ['a']);
    assert.equal(pacer.admit('a'), false, 'the deferred round counts as the channel’s round');
    pacer.defer('a', () => rounds.push('cancelled'));
    pacer.close();
    assert.equal(
      pacer.defer('b', () => rounds.push('b')),
      false,
      'nothing is scheduled once closed',
    );
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(rounds, ['a'], 'close() cancels the waiting round');
  });
});
