/**
 * Seeded fuzz: well over 1,000 malformed frames, over socket.io and the raw WebSocket, at a
 * server holding a few documents. Afterwards the server must still be up (/healthz,
 * /readyz), a fresh client must be able to edit, every pre-existing document must be
 * exactly as before (stored snapshot, op log, what subscribers saw), and no frame may have
 * raised an uncaught exception or unhandled rejection (either ends a production process),
 * wedged a connection, or been answered with an error that has no stable code.
 *
 * A connection the server closes is allowed (a frame that is not valid UTF-8 must close a
 * WebSocket) and is listed in the summary. Reproduce a run with
 *   FUZZ_SEED=<seed> [FUZZ_FRAMES=<per transport>] npx mocha test/integration/malformed-frames.test.ts
 */
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { create, fetchDoc, stockClient, submit, subscribe } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { ProcessFaultRecorder } from './bad-input-faults.js';
import { Rng } from '../fuzz/rng.js';
import { describeFrame, generateFrame, type DocRef, type FuzzFrame } from './bad-input-frames.js';
import { TRANSPORTS, WireClient, captureShareDbLogs, healthz, storedDoc, type StoredDoc, type TransportName } from './bad-input-wire.js';

function parseSeed(raw: string | undefined): number | null {
  if (!raw) return null;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new Error(`FUZZ_SEED must be an integer, got "${raw}"`);
  return value >>> 0;
}

const SEED = parseSeed(process.env.FUZZ_SEED) ?? 0x5eed7a4d;
const FRAMES_PER_TRANSPORT = Number(process.env.FUZZ_FRAMES ?? 750);
const MAX_OP_BYTES = 2048;
/** Large enough for stack-deep nesting to fit in a frame, as the 1 MiB default allows. */
const MAX_FRAME_BYTES = 128 * 1024;
const ENV = { MAX_OP_BYTES: String(MAX_OP_BYTES), MAX_FRAME_BYTES: String(MAX_FRAME_BYTES) };
const LIMITS = { maxOpBytes: MAX_OP_BYTES, maxDepth: 64 };
/** How long a connection may take to answer the ping sent after each frame. */
const SENTINEL_TIMEOUT_MS = 1_500;
const STABLE_CODE = /^(ERR|TANDEM)_[A-Z0-9_]+$/;

/** The documents that must come through untouched, with the edits that give them history. */
const DOCS: Array<DocRef & { data: unknown; edits: unknown[] }> = [
  {
    c: 'docs',
    d: 'alpha',
    data: { title: 'alpha', n: 1, list: [1, 2, 3], nested: { a: { b: { c: 'deep' } } } },
    edits: [['list', 3, { i: 4 }], ['n', { r: true, i: 2 }], ['title', { es: [5, '!'] }]],
  },
  {
    c: 'docs',
    d: 'beta',
    data: { text: 'hello world', tags: [] },
    edits: [['tags', 0, { i: 'a' }], ['tags', 1, { i: 'b' }], ['text', { es: [0, '> '] }], ['tags', 0, { r: true }], ['extra', { i: null }]],
  },
  { c: 'docs', d: '1', data: { numericId: true }, edits: [] },
  { c: 'notes', d: 'gamma', data: {}, edits: [['k', { i: 'v' }]] },
];
const EXISTING: DocRef[] = DOCS.map(({ c, d }) => ({ c, d }));

interface FrameOutcome {
  transport: TransportName;
  index: number;
  frame: FuzzFrame;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sendFrame(wire: WireClient, frame: FuzzFrame): void {
  switch (frame.mode) {
    case 'args':
      wire.emitArgs(...(frame.payload as unknown[]));
      break;
    case 'bad-utf8':
      wire.sendRawText(frame.payload as Buffer);
      break;
    default:
      wire.send(frame.payload);
  }
}

describe('malformed frames: a seeded fuzz over both transports', function () {
  this.timeout(300_000);
  let server: TestServer;
  const wires = new Set<WireClient>();
  const faults = new ProcessFaultRecorder();
  let logs: ReturnType<typeof captureShareDbLogs>;
  const closers: Array<() => void> = [];

  beforeEach(async () => {
    logs = captureShareDbLogs();
    faults.start();
    server = await startTestServer(ENV);
  });

  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await Promise.all([...wires].map((w) => w.close()));
    wires.clear();
    await server.close();
    faults.stop();
    logs.restore();
  });

  async function openWire(transport: TransportName, setup: (w: WireClient) => Promise<void>): Promise<WireClient> {
    const wire = await WireClient.open(transport, server.url);
    wires.add(wire);
    await wire.handshake();
    await setup(wire);
    return wire;
  }

  it(`≥ 1,000 malformed frames leave the server up and every document unchanged (seed ${SEED})`, async () => {
    // Documents with some history, written by a stock client.
    const author = stockClient(server.url);
    closers.push(() => author.close());
    for (const spec of DOCS) {
      const doc = author.connection.get(spec.c, spec.d);
      await create(doc, spec.data);
      for (const op of spec.edits) await submit(doc, op);
    }
    author.close();
    const before = new Map<string, StoredDoc>();
    for (const { c, d } of EXISTING) before.set(`${c}/${d}`, await storedDoc(server, c, d));
    const protoNames = Object.getOwnPropertyNames(Object.prototype).sort();

    // A bystander subscribed to every document: it must see no op at all.
    const watcher = await openWire('ws', async (w) => {
      for (const { c, d } of EXISTING) await w.subscribe(c, d);
    });

    const problems: string[] = [];
    const closes: Array<FrameOutcome & { reason: string }> = [];
    const wedged: Array<FrameOutcome & { earlierFaults: number[] }> = [];
    const faulted: Array<FrameOutcome & { faults: string }> = [];
    const uncoded: string[] = [];
    const codes = new Map<string, number>();
    /** One reply per code (ShareDB echoes the request, so it shows the frame). */
    const examples = new Map<string, string>();
    const kinds = new Map<string, number>();
    let sent = 0;

    const scanReplies = (wire: WireClient) => {
      for (const { raw, msg } of wire.inbox) {
        if (typeof msg !== 'object' || msg === null) {
          uncoded.push(`non-object reply over ${wire.transport}: ${raw.slice(0, 200)}`);
          continue;
        }
        if (!('error' in msg)) continue;
        const code = msg.error?.code;
        if (typeof code !== 'string' || !STABLE_CODE.test(code)) uncoded.push(`over ${wire.transport}: ${raw.slice(0, 300)}`);
        codes.set(String(code), (codes.get(String(code)) ?? 0) + 1);
        if (!examples.has(String(code))) examples.set(String(code), raw.slice(0, 160));
      }
    };
    const retire = async (wire: WireClient) => {
      scanReplies(wire);
      await wire.close();
      wires.delete(wire);
    };
    const openFuzzWire = (transport: TransportName) =>
      openWire(transport, async (w) => {
        // Subscribed and presence-subscribed, so frames hit an agent with live state.
        await w.subscribe(EXISTING[0]!.c, EXISTING[0]!.d);
        await w.subscribe(EXISTING[1]!.c, EXISTING[1]!.d);
        await w.exchange({ a: 'ps', ch: `${EXISTING[0]!.c}.${EXISTING[0]!.d}`, seq: 1 }, (m) => m.a === 'ps', 'presence subscribe');
      });

    const rng = new Rng(SEED);
    for (const transport of TRANSPORTS) {
      let wire = await openFuzzWire(transport);
      /** Frames on the current connection that raised a fault: a later silence is theirs. */
      let faultedOnWire: number[] = [];
      for (let index = 0; index < FRAMES_PER_TRANSPORT; index++) {
        const frame = generateFrame(rng, { transport, existing: EXISTING, src: wire.src, limits: LIMITS });
        kinds.set(frame.kind, (kinds.get(frame.kind) ?? 0) + 1);
        const outcome: FrameOutcome = { transport, index, frame };
        faults.during = `${transport} #${index} ${describeFrame(frame)}`;
        const faultsBefore = faults.faults.length;

        const from = wire.mark();
        sendFrame(wire, frame);
        sent++;
        // Frames are handled in order per connection, so the ping's answer means the frame
        // was taken in (async work it started may still finish later).
        const sentinel = `sentinel-${transport}-${index}`;
        wire.send(JSON.stringify({ a: 'pp', id: sentinel }));
        const answered = await wire
          .waitFor((m) => m.a === 'pp' && m.id === sentinel, 'the ping after the frame', from, SENTINEL_TIMEOUT_MS)
          .then(() => true, () => false);

        if (faults.faults.length > faultsBefore) {
          faulted.push({ ...outcome, faults: faults.describe(faults.since(faultsBefore)) });
          faultedOnWire.push(index);
        }
        if (wire.closed) closes.push({ ...outcome, reason: wire.closed.reason });
        else if (!answered) wedged.push({ ...outcome, earlierFaults: faultedOnWire.filter((i) => i !== index) });
        if (wire.closed || !answered) {
          await retire(wire);
          wire = await openFuzzWire(transport);
          faultedOnWire = [];
        }
      }
      await retire(wire);
    }
    faults.during = 'after the fuzz';

    // --- The server is up, idle, and every document is as it was. ---
    await waitFor(() => server.backend.stats.inFlight === 0, { timeoutMs: 5_000, what: 'no submit in flight' }).catch(() =>
      problems.push(`${server.backend.stats.inFlight} submits never finished (a document's submit queue is stuck)`),
    );
    const health = await healthz(server.url);
    if (health !== 200) problems.push(`/healthz answered ${health}`);
    const ready = await fetch(`${server.url}/readyz`);
    await ready.arrayBuffer();
    if (ready.status !== 200) problems.push(`/readyz answered ${ready.status}`);

    for (const { c, d } of EXISTING) {
      const now = await storedDoc(server, c, d);
      try {
        assert.deepEqual(now, before.get(`${c}/${d}`));
      } catch {
        problems.push(`${c}/${d} changed: before ${JSON.stringify(before.get(`${c}/${d}`))}, after ${JSON.stringify(now)}`);
      }
    }
    const watcherOps = watcher.inbox.filter(({ msg }) => msg?.a === 'op');
    if (watcherOps.length) problems.push(`a subscriber saw ops on untouched documents:\n${watcherOps.map(({ raw }) => raw.slice(0, 200)).join('\n')}`);
    if (watcher.closed) problems.push(`the bystander's connection was closed: ${watcher.closed.reason}`);
    const protoNow = Object.getOwnPropertyNames(Object.prototype).sort();
    if (JSON.stringify(protoNow) !== JSON.stringify(protoNames)) problems.push(`Object.prototype changed: ${protoNow.join(', ')}`);
    if ((({}) as Record<string, unknown>).polluted !== undefined) problems.push('Object.prototype polluted');

    // --- A fresh client reads the same documents and can edit them and new ones. ---
    const fresh = stockClient(server.url);
    closers.push(() => fresh.close());
    for (const { c, d } of EXISTING) {
      const doc = fresh.connection.get(c, d);
      try {
        await within(fetchDoc(doc), 3_000, `fetch ${c}/${d}`);
        const expected = before.get(`${c}/${d}`)!;
        assert.deepEqual([doc.version, doc.data], [expected.v, expected.data]);
        await within(submit(doc, ['afterFuzz', { i: true }]), 3_000, `edit ${c}/${d}`);
      } catch (err) {
        problems.push(`a fresh client could not read and edit ${c}/${d}: ${(err as Error).message.slice(0, 300)}`);
      }
    }
    try {
      const doc = fresh.connection.get('docs', `after-fuzz-${SEED}`);
      await within(subscribe(doc), 3_000, 'subscribe a new doc');
      await within(create(doc, { made: 'after the fuzz' }), 3_000, 'create a new doc');
      await within(submit(doc, ['edited', { i: 1 }]), 3_000, 'edit a new doc');
    } catch (err) {
      problems.push(`a fresh client could not create and edit a document: ${(err as Error).message}`);
    }

    scanReplies(watcher);
    for (const f of faulted) problems.push(`frame ${f.transport} #${f.index} raised a process fault: ${describeFrame(f.frame)}\n    ${f.faults.split('\n').slice(0, 4).join('\n    ')}`);
    for (const w of wedged) {
      // A fault in an earlier frame's async reply can wedge the connection only now.
      const cause = w.earlierFaults.length ? ` (after the fault of frame #${w.earlierFaults.join(', #')} on this connection; probably its doing)` : '';
      problems.push(`the connection stopped answering at frame ${w.transport} #${w.index}${cause}: ${describeFrame(w.frame)}`);
    }
    for (const u of uncoded.slice(0, 20)) problems.push(`error reply without a stable code ${u}`);
    if (uncoded.length > 20) problems.push(`… and ${uncoded.length - 20} more uncoded replies`);

    const summary = [
      `seed ${SEED} (0x${SEED.toString(16)}): ${sent} frames; kinds ${JSON.stringify(Object.fromEntries(kinds))}`,
      `error codes: ${JSON.stringify(Object.fromEntries([...codes].sort((a, b) => b[1] - a[1])))}`,
      ...[...examples].map(([code, raw]) => `  e.g. ${code}: ${raw}`),
      `connections closed by the server: ${closes.length}`,
      ...closes.map((c) => `  ${c.transport} #${c.index} (${c.reason}): ${describeFrame(c.frame, 120)}`),
    ].join('\n');
    console.log(summary.replace(/^/gm, '      '));

    assert.ok(sent >= 1000, `only ${sent} frames sent`);
    assert.equal(
      problems.length,
      0,
      `${problems.length} problem(s) with seed ${SEED}; reproduce with FUZZ_SEED=${SEED} FUZZ_FRAMES=${FRAMES_PER_TRANSPORT} ` +
        `npx mocha test/integration/malformed-frames.test.ts\n${problems.join('\n')}`,
    );
  });
});
