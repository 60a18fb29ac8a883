/**
 * Bad input over the wire, byte for byte, on both transports (socket.io's SHAREDB_EVENT and
 * the raw WebSocket at /sharedb): a malformed frame, an unknown action, an invalid json1 op,
 * an op on a missing document, an oversized or too-deep op, a too-large frame, a non-json1
 * create, and an op that cannot apply. Each must be answered with an error carrying a stable
 * code, and leave the connection (and its subscriptions), the server and the document as
 * they were: the same connection then commits a valid op, still receives other clients'
 * ops, and the document's stored snapshot and op log did not move.
 */
import assert from 'node:assert/strict';
import { ShareDbErrorCode, TandemErrorCode } from '../../client/protocol.js';
import { useServerPerTest, type ServerPerTest, type TestServer } from '../helpers/server.js';
import { create, fetchDoc, stockClient, subscribe, submit, type Doc } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { ProcessFaultRecorder } from './bad-input-faults.js';
import {
  TRANSPORTS,
  WireClient,
  captureShareDbLogs,
  deepArrayText,
  healthz,
  preview,
  storedDoc,
  type Json,
  type StoredDoc,
} from './bad-input-wire.js';
import {
  C,
  D,
  INITIAL,
  LIMITS,
  MAX_FRAME_BYTES,
  MAX_OP_BYTES,
  MAX_OP_DEPTH,
  MISSING,
  STABLE_CODE,
  badInputs,
  isFrameError,
  nested,
  type Fixture,
} from './bad-input-cases.js';

/**
 * Runs `body`, then fails if the process recorded a fault; a failure of `body` itself is
 * reported together with the faults, which are usually its cause (a reply that never came).
 */
async function reportingFaults(faults: ProcessFaultRecorder, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (faults.faults.length === 0) throw err;
    throw new Error(`${(err as Error).message}\nprocess faults (each would end a production server):\n${faults.describe()}`);
  }
  assert.equal(faults.faults.length, 0, `process faults (each would end a production server):\n${faults.describe()}`);
}

/** Opens `wire` + `peer` on one transport, creates the document and subscribes both. */
async function openFixture(server: TestServer, transport: (typeof TRANSPORTS)[number]): Promise<Fixture> {
  const wire = await WireClient.open(transport, server.url);
  const peer = await WireClient.open(transport, server.url);
  await Promise.all([wire.handshake(), peer.handshake()]);
  await wire.create(C, D, INITIAL);
  await Promise.all([wire.subscribe(C, D), peer.subscribe(C, D)]);
  return { server, wire, peer };
}

/**
 * The connection is as it was: it commits a valid op (no op from the bad input was
 * broadcast before it), its subscription still delivers the peer's ops, and the stored
 * document moved by exactly those two ops.
 */
async function assertConnectionStillWorks({ server, wire, peer }: Fixture, before: StoredDoc, peerMark: number): Promise<void> {
  assert.equal(wire.closed, null, `connection closed: ${wire.closed?.reason}`);
  const ack = await wire.submit({ c: C, d: D, v: before.v, op: ['list', 0, { i: 'after' }] });
  assert.equal(ack.error, undefined, `valid op refused after the bad input: ${preview(ack)}`);
  assert.equal(ack.v, before.v);

  const seen = await peer.waitFor(
    (m) => m.a === 'op' && m.c === C && m.d === D && m.src === wire.src && m.seq === ack.seq,
    'the valid op at the peer',
    peerMark,
  );
  const peerOps = peer.inbox.slice(peerMark).filter(({ msg }) => msg?.a === 'op' && msg.c === C && msg.d === D && 'op' in msg);
  assert.deepEqual(
    peerOps.map(({ msg }) => msg.v),
    [before.v],
    `the peer saw ops other than the valid one: ${peerOps.map(({ raw }) => raw.slice(0, 200)).join('\n')}`,
  );
  assert.deepEqual(seen.op, ['list', 0, { i: 'after' }]);

  const wireMark = wire.mark();
  const peerAck = await peer.submit({ c: C, d: D, v: before.v + 1, op: ['list', 0, { i: 'peer' }] });
  assert.equal(peerAck.error, undefined, preview(peerAck));
  await wire.waitFor(
    (m) => m.a === 'op' && m.d === D && m.src === peer.src && m.v === before.v + 1,
    "the peer's op at the bad-input connection",
    wireMark,
  );

  const after = await storedDoc(server, C, D);
  assert.equal(after.v, before.v + 2);
  assert.equal(after.ops, before.ops + 2);
  assert.deepEqual(after.data, { ...(before.data as object), list: ['peer', 'after', ...(before.data as typeof INITIAL).list] });
}

/**
 * Per test: ShareDB's log output captured and process faults recorded. Call it after
 * `useServerPerTest`, so recording also covers the server's close (hooks run in order).
 */
function useFaultRecorder(): ProcessFaultRecorder {
  const faults = new ProcessFaultRecorder();
  let logs: ReturnType<typeof captureShareDbLogs>;
  beforeEach(() => {
    logs = captureShareDbLogs();
    faults.start();
  });
  afterEach(() => {
    faults.stop();
    logs.restore();
  });
  return faults;
}

/** openFixture on this test's server; both clients are closed after the test. */
async function openTracked(fx: ServerPerTest, transport: (typeof TRANSPORTS)[number]): Promise<Fixture> {
  const f = await openFixture(fx.server, transport);
  fx.closers.push(async () => {
    await f.wire.close();
    await f.peer.close();
  });
  return f;
}

describe('bad input: coded errors, and nothing else changes', function () {
  const fx = useServerPerTest(LIMITS);
  const faults = useFaultRecorder();

  function assertNoFaults(): void {
    assert.equal(faults.faults.length, 0, `process faults:\n${faults.describe()}`);
  }

  for (const transport of TRANSPORTS) {
    describe(`over ${transport}`, () => {
      for (const input of badInputs) {
        it(`${input.name} → ${input.code}`, async () => {
          const f = await openTracked(fx, transport);
          const before = await storedDoc(fx.server, C, D);
          const peerMark = f.peer.mark();
          faults.during = input.name;

          const reply = await input.send(f);
          assert.ok(reply.error, `expected an error reply, got ${preview(reply)}`);
          assert.match(String(reply.error.code), STABLE_CODE, `no stable code in the reply: ${preview(reply)}`);
          assert.equal(reply.error.code, input.code, `reply: ${preview(reply)}`);
          assert.equal(typeof reply.error.message, 'string');

          assert.deepEqual(await storedDoc(fx.server, C, D), before, 'the bad input changed the document');
          for (const id of input.staysMissing ?? []) {
            const missing = await storedDoc(fx.server, C, id);
            assert.deepEqual([missing.v, missing.type, missing.ops], [0, null, 0], `${id} was created`);
          }
          await assertConnectionStillWorks(f, before, peerMark);
          assertNoFaults();
        });
      }

      if (transport === 'socket.io') {
        const payloads: Array<[string, unknown]> = [
          ['an object (not JSON text)', { a: 'hs', protocol: 1 }],
          ['a number', 42],
          ['binary', Buffer.from('{"a":"pp"}')],
          ['null', null],
        ];
        for (const [what, payload] of payloads) {
          it(`a socket.io event carrying ${what} → ${TandemErrorCode.BAD_FRAME}`, async () => {
            const f = await openTracked(fx, transport);
            const before = await storedDoc(fx.server, C, D);
            const peerMark = f.peer.mark();
            const from = f.wire.mark();
            f.wire.send(payload);
            const reply = await f.wire.waitFor(isFrameError, 'frame error', from);
            assert.equal(reply.error.code, TandemErrorCode.BAD_FRAME);
            await assertConnectionStillWorks(f, before, peerMark);
            assertNoFaults();
          });
        }

        it(`a socket.io event with no argument → ${TandemErrorCode.BAD_FRAME}`, async () => {
          const f = await openTracked(fx, transport);
          const before = await storedDoc(fx.server, C, D);
          const peerMark = f.peer.mark();
          const from = f.wire.mark();
          f.wire.emitArgs();
          const reply = await f.wire.waitFor(isFrameError, 'frame error', from);
          assert.equal(reply.error.code, TandemErrorCode.BAD_FRAME);
          await assertConnectionStillWorks(f, before, peerMark);
          assertNoFaults();
        });
      } else {
        it(`a binary WebSocket frame → ${TandemErrorCode.BAD_FRAME}`, async () => {
          const f = await openTracked(fx, transport);
          const before = await storedDoc(fx.server, C, D);
          const peerMark = f.peer.mark();
          const from = f.wire.mark();
          f.wire.send(
            Buffer.from(JSON.stringify({ a: 'op', c: C, d: D, v: 1, src: f.wire.src, seq: 99, op: ['list', 0, { i: 'binary' }] })),
          );
          const reply = await f.wire.waitFor(isFrameError, 'frame error', from);
          assert.equal(reply.error.code, TandemErrorCode.BAD_FRAME);
          assert.deepEqual(await storedDoc(fx.server, C, D), before);
          await assertConnectionStillWorks(f, before, peerMark);
          assertNoFaults();
        });
      }

      it('a frame past the transport cap (2 × MAX_FRAME_BYTES) closes only that connection', async () => {
        const f = await openTracked(fx, transport);
        const before = await storedDoc(fx.server, C, D);
        f.wire.send(`{"a":"pp","pad":"${'x'.repeat(2 * MAX_FRAME_BYTES + 1000)}"}`);
        await waitFor(() => f.wire.closed !== null, { what: `the server to close the ${transport} connection` });
        if (transport === 'ws') assert.match(f.wire.closed!.reason, /^ws close 1009\b/, 'ws closes with 1009 (message too big)');
        assert.equal(await healthz(fx.server.url), 200);
        assert.deepEqual(await storedDoc(fx.server, C, D), before);
        // The peer's connection is untouched.
        const ack = await f.peer.submit({ c: C, d: D, v: before.v, op: ['list', 0, { i: 'peer' }] });
        assert.equal(ack.error, undefined, preview(ack));
        assertNoFaults();
      });
    });
  }
});

/**
 * Nesting deep enough to overflow the stack (about 4,000 levels; a 1 MiB frame, the default
 * MAX_FRAME_BYTES, holds 500,000). Limits are the defaults here, as in production. The
 * right answer is the same as for any too-deep input: a coded error, and the process, the
 * connection and the document carry on.
 */
describe('bad input: nesting deep enough to overflow the stack (default limits)', function () {
  const DEPTH = 20_000;
  const deep = deepArrayText(DEPTH);
  const fx = useServerPerTest();
  const faults = useFaultRecorder();

  interface DeepCase {
    name: string;
    frame(f: Fixture, seq: number): string;
    reply(seq: number): (m: Json) => boolean;
    /** Expected code; null: any stable code. Undefined: no reply is due (presence). */
    code?: string | null;
  }
  const cases: DeepCase[] = [
    {
      name: `an edit op nested ${DEPTH} deep`,
      frame: (f, seq) => `{"a":"op","c":"${C}","d":"${D}","v":1,"src":"${f.wire.src}","seq":${seq},"op":["x",{"i":${deep}}]}`,
      reply: (seq) => WireClient.opReply(seq),
      code: TandemErrorCode.OP_TOO_DEEP,
    },
    {
      name: `a created document nested ${DEPTH} deep`,
      frame: (f, seq) =>
        `{"a":"op","c":"${C}","d":"${MISSING}","v":null,"src":"${f.wire.src}","seq":${seq},"create":{"type":"json1","data":{"x":${deep}}}}`,
      reply: (seq) => WireClient.opReply(seq),
      code: TandemErrorCode.OP_TOO_DEEP,
    },
    {
      name: `an unknown action carrying a field nested ${DEPTH} deep`,
      frame: (_f, seq) => `{"a":"zz","tag":"deep${seq}","x":${deep}}`,
      reply: (seq) => (m) => m.tag === `deep${seq}`,
      code: ShareDbErrorCode.BADLY_FORMED,
    },
    {
      name: `a subscribe with a bad version carrying a field nested ${DEPTH} deep`,
      frame: (_f, seq) => `{"a":"s","c":"${C}","d":"${D}","v":"x","tag":"deep${seq}","x":${deep}}`,
      reply: (seq) => (m) => m.tag === `deep${seq}`,
      code: ShareDbErrorCode.BADLY_FORMED,
    },
    {
      name: `a query whose query is nested ${DEPTH} deep`,
      frame: (_f, seq) => `{"a":"qf","id":${seq},"c":"${C}","q":${deep}}`,
      reply: (seq) => (m) => m.a === 'qf' && m.id === seq,
      code: null,
    },
    {
      name: `a presence update nested ${DEPTH} deep`,
      frame: (_f, seq) => `{"a":"p","c":"${C}","d":"${D}","id":"presence${seq}","v":1,"pv":1,"seq":${seq},"p":${deep}}`,
      reply: () => () => false,
      code: undefined,
    },
  ];

  for (const transport of TRANSPORTS) {
    describe(`over ${transport}`, () => {
      for (const c of cases) {
        it(`${c.name}: ${c.code === undefined ? 'no fault' : (c.code ?? 'a coded error')}, and everything carries on`, async () => {
          const f = await openTracked(fx, transport);
          // A presence subscriber, so a presence update is relayed somewhere.
          await f.peer.exchange({ a: 'ps', ch: `${C}.${D}`, seq: 1 }, (m) => m.a === 'ps', 'presence subscribe');
          const before = await storedDoc(fx.server, C, D);
          const seq = f.wire.nextSeq();
          faults.during = c.name;
          const from = f.wire.mark();
          f.wire.send(c.frame(f, seq));
          await reportingFaults(faults, async () => {
            if (c.code !== undefined) {
              // Refusing the frame itself (a transport-level `{error}`) is as good as refusing the op.
              const match = c.reply(seq);
              const reply = await f.wire.waitFor((m) => match(m) || isFrameError(m), `the reply to ${c.name}`, from, 3_000);
              assert.ok(reply.error, `expected an error, got ${preview(reply)}`);
              assert.match(String(reply.error.code), STABLE_CODE);
              if (c.code !== null && !isFrameError(reply)) assert.equal(reply.error.code, c.code);
            }
            // The connection still answers and the document still takes ops (its submit queue is not stuck).
            const ack = await f.wire.submit({ c: C, d: D, v: before.v, op: ['list', 0, { i: 'after' }] }, 3_000);
            assert.equal(ack.error, undefined, preview(ack));
            const peerAck = await f.peer.submit({ c: C, d: D, v: before.v + 1, op: ['list', 0, { i: 'peer' }] }, 3_000);
            assert.equal(peerAck.error, undefined, preview(peerAck));
            assert.equal((await storedDoc(fx.server, C, D)).v, before.v + 2);
            assert.equal(fx.server.backend.stats.inFlight, 0, 'a submit never finished');
            assert.equal(await healthz(fx.server.url), 200);
          });
        });
      }
    });
  }
});

describe('bad input from a stock ShareDB client (submitOp / create callbacks)', function () {
  const fx = useServerPerTest(LIMITS);
  const faults = useFaultRecorder();
  let doc: Doc;

  beforeEach(async () => {
    const client = stockClient(fx.server.url);
    fx.closers.push(async () => client.close());
    doc = client.connection.get(C, D);
    await subscribe(doc);
    await create(doc, INITIAL);
  });

  function submitError(op: unknown): Promise<{ code?: string; message?: string } | null> {
    return new Promise((resolve) => doc.submitOp(op, {}, (err) => resolve((err as unknown as { code?: string } | undefined) ?? null)));
  }

  const refused: Array<[string, unknown, string]> = [
    ['an op over MAX_OP_BYTES', ['big', { i: 'x'.repeat(MAX_OP_BYTES + 500) }], TandemErrorCode.OP_TOO_LARGE],
    ['an op nested deeper than MAX_OP_DEPTH', ['deep', { i: nested(MAX_OP_DEPTH + 10) }], TandemErrorCode.OP_TOO_DEEP],
  ];
  for (const [what, op, code] of refused) {
    it(`submitOp with ${what}: the callback gets ${code}, the doc rolls back and takes the next op`, async () => {
      const before = await storedDoc(fx.server, C, D);
      const err = await submitError(op);
      assert.equal(err?.code, code, `callback error: ${preview(err)}`);
      assert.deepEqual(await storedDoc(fx.server, C, D), before);
      await submit(doc, ['list', 0, { i: 'next' }]);
      const after = await storedDoc(fx.server, C, D);
      assert.equal(after.v, before.v + 1);
      assert.deepEqual(doc.data, after.data);
      assert.equal(faults.faults.length, 0, faults.describe());
    });
  }

  it(`create with type json0: the callback gets ${TandemErrorCode.UNSUPPORTED_TYPE} and no document exists`, async () => {
    const other = doc.connection.get(C, MISSING);
    const err = await new Promise<{ code?: string } | null>((resolve) =>
      other.create({ a: 1 }, 'json0', (e) => resolve((e as unknown as { code?: string } | undefined) ?? null)),
    );
    assert.equal(err?.code, TandemErrorCode.UNSUPPORTED_TYPE);
    const stored = await storedDoc(fx.server, C, MISSING);
    assert.deepEqual([stored.v, stored.type], [0, null]);
    await fetchDoc(other);
    assert.equal(other.type, null);
    assert.equal(faults.faults.length, 0, faults.describe());
  });
});
