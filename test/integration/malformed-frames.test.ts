/**
 * Seeded fuzz: well over 1,000 malformed frames, split between /sharedb (raw WebSocket),
 * socket.io, and socket.io with batched replies (`tandemBatch=1`), at a server with
 * authentication on (AUTH_ENV) holding a few documents; every connection presents a valid
 * token. After each frame, on the same connection:
 * - a frame the transport layer must refuse (not text, not JSON, not an object, too large,
 *   too deep) got exactly one refusal, with exactly the expected code and echoed fields,
 *   before the ping sent after it was answered; a frame that reaches ShareDB got none;
 * - the connection answers a ping and still commits an op (to its own scratch document,
 *   acknowledged at the expected version).
 * A connection may only be closed by the frame that must close it (invalid UTF-8 over ws).
 *
 * Afterwards the server must still be up (/healthz, /readyz), every pre-existing document
 * must be exactly as before (stored snapshot, version, op count, what subscribers on both
 * transports saw), every scratch document must hold exactly the ops acknowledged, a fresh
 * client must be able to edit, no frame may have raised an uncaught exception or unhandled
 * rejection (either ends a production process) or wedged a connection, and every error
 * reply must carry a stable code. Reproduce a run with
 *   FUZZ_SEED=<seed> [FUZZ_FRAMES=<per transport>] [FUZZ_TRANSPORTS=ws,socket.io,socket.io+batch] \
 *     npx mocha test/integration/malformed-frames.test.ts
 * (each transport has its own stream forked from the seed: one transport alone replays the
 * same frames as in the full run).
 */
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { create, fetchDoc, submit, subscribe } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { AUTH_ENV, testToken } from '../helpers/auth.js';
import { sourceTagOf } from '../../server/auth/identity.js';
import { FRAME_ENVELOPE_DEPTH } from '../../server/transport/message-stream.js';
import { ProcessFaultRecorder } from './bad-input-faults.js';
import { Rng } from '../fuzz/rng.js';
import { describeFrame, generateFrame, type DocRef, type FuzzFrame } from './bad-input-frames.js';
import { captureShareDbLogs, healthz, storedDoc, type StoredDoc } from './bad-input-wire.js';
import {
  AuthedWire,
  FUZZ_TRANSPORTS,
  TRANSPORT_CODES,
  frameVerdict,
  replyError,
  stockClientWithToken,
  type FrameLimits,
  type FuzzTransport,
  type Received,
  type Verdict,
  type WireMessage,
} from './malformed-frames-wire.js';

function parseSeed(raw: string | undefined): number | null {
  if (!raw) return null;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new Error(`FUZZ_SEED must be an integer, got "${raw}"`);
  return value >>> 0;
}

function parseTransports(raw: string | undefined): FuzzTransport[] {
  if (!raw) return [...FUZZ_TRANSPORTS];
  const names = raw.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(FUZZ_TRANSPORTS as readonly string[]).includes(name))
      throw new Error(`FUZZ_TRANSPORTS: unknown "${name}" (use ${FUZZ_TRANSPORTS.join(', ')})`);
  }
  return FUZZ_TRANSPORTS.filter((t) => names.includes(t));
}

const SEED = parseSeed(process.env.FUZZ_SEED) ?? 0x5eed7a4d;
/** As many frames per transport as before (750 each, now three transports: ~5 s in all). */
const DEFAULT_FRAMES = 750;
const FRAMES_PER_TRANSPORT = Number(process.env.FUZZ_FRAMES ?? DEFAULT_FRAMES);
const TRANSPORTS = parseTransports(process.env.FUZZ_TRANSPORTS);
const MAX_OP_BYTES = 2048;
/** Large enough for stack-deep nesting to fit in a frame, as the 1 MiB default allows. */
const MAX_FRAME_BYTES = 128 * 1024;
/**
 * Auth on. Op and create rates raised far past what one run sends (~2,250 probe commits by
 * one user in a few seconds): the probe after each frame must not be throttled. Other
 * limits stay at their defaults; their refusals are coded replies like any other.
 */
const ENV = {
  ...AUTH_ENV,
  MAX_OP_BYTES: String(MAX_OP_BYTES),
  MAX_FRAME_BYTES: String(MAX_FRAME_BYTES),
  OPS_PER_MINUTE: '10000000',
  CREATES_PER_MINUTE: '10000000',
  // Refused frames back to back are this fuzz's point: the refusal penalty (its own test,
  // resilience/refusal-penalty) would hold the connection after each burst and make the run
  // ten times longer without checking anything more here.
  REFUSALS_PER_SECOND: '0',
};
/** How long a connection may take to answer the ping sent after each frame. */
const SENTINEL_TIMEOUT_MS = 1_500;
/** How long the commit after each frame may take. */
const COMMIT_TIMEOUT_MS = 3_000;
/** Wedged connections after which the fuzz stops (each costs up to both timeouts): keeps a bad run short. */
const MAX_WEDGED = 8;
const STABLE_CODE = /^(ERR|TANDEM)_[A-Z0-9_]+$/;
/** Where each fuzzing connection commits after every frame; no frame names this collection. */
const SCRATCH = 'fuzz-scratch';
/** The user every fuzzing connection authenticates as; its source ids carry this user's tag. */
const FUZZ_USER = 'fuzzer';

/** The documents that must come through untouched, with the edits that give them history. */
const DOCS: Array<DocRef & { data: unknown; edits: unknown[] }> = [
  {
    c: 'docs',
    d: 'alpha',
    data: { title: 'alpha', n: 1, list: [1, 2, 3], nested: { a: { b: { c: 'deep' } } } },
    edits: [
      ['list', 3, { i: 4 }],
      ['n', { r: true, i: 2 }],
      ['title', { es: [5, '!'] }],
    ],
  },
  {
    c: 'docs',
    d: 'beta',
    data: { text: 'hello world', tags: [] },
    edits: [
      ['tags', 0, { i: 'a' }],
      ['tags', 1, { i: 'b' }],
      ['text', { es: [0, '> '] }],
      ['tags', 0, { r: true }],
      ['extra', { i: null }],
    ],
  },
  { c: 'docs', d: '1', data: { numericId: true }, edits: [] },
  { c: 'notes', d: 'gamma', data: {}, edits: [['k', { i: 'v' }]] },
];
const EXISTING: DocRef[] = DOCS.map(({ c, d }) => ({ c, d }));

interface FrameOutcome {
  transport: FuzzTransport;
  index: number;
  frame: FuzzFrame;
}

/** A fuzzing connection's scratch document: every ack after a frame is one op here. */
interface Scratch {
  d: string;
  /** Version the next op applies at (1 after the create). */
  v: number;
  /** Set when a commit's outcome is unknown (timed out): the final count is not checked. */
  uncertain: boolean;
  lastIndex: number | null;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sendFrame(wire: AuthedWire, frame: FuzzFrame): void {
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

/** The reply's fields other than `error`, as JSON with sorted keys (-0 and 0 alike). */
function echoOf(received: Received): string {
  const fields = Object.entries(received.msg ?? {}).filter(([k]) => k !== 'error');
  return JSON.stringify(Object.fromEntries(fields.sort(([a], [b]) => (a < b ? -1 : 1))));
}

function expectedEcho(verdict: Extract<Verdict, { kind: 'refuse' }>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(verdict.echo).sort(([a], [b]) => (a < b ? -1 : 1))));
}

/** What is wrong with the transport-level refusals in one frame's reply window, or null. */
function checkRefusals(verdict: Verdict, window: Received[]): string | null {
  const refusals = window.filter(({ msg }) => TRANSPORT_CODES.has(replyError(msg)?.code ?? ''));
  const shown = () => refusals.map(({ raw }) => raw.slice(0, 200)).join(' | ') || 'none';
  if (verdict.kind === 'sharedb') return refusals.length === 0 ? null : `a frame ShareDB should have seen was refused: ${shown()}`;
  if (verdict.kind === 'close') return null;
  if (refusals.length !== 1) return `expected exactly one ${verdict.code} refusal, got ${refusals.length}: ${shown()}`;
  const [only] = refusals;
  const code = replyError(only!.msg)?.code;
  if (code !== verdict.code) return `expected ${verdict.code}, got ${code}: ${shown()}`;
  if (echoOf(only!) !== expectedEcho(verdict)) return `${verdict.code} refusal echoed ${echoOf(only!)}, expected ${expectedEcho(verdict)}`;
  return null;
}

describe('malformed frames: a seeded fuzz over /sharedb and socket.io, with auth on', function () {
  this.timeout(120_000);
  let server: TestServer;
  const wires = new Set<AuthedWire>();
  const faults = new ProcessFaultRecorder();
  let logs: ReturnType<typeof captureShareDbLogs>;
  const closers: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    logs = captureShareDbLogs();
    faults.start();
    server = await startTestServer(ENV);
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await Promise.all([...wires].map((w) => w.close()));
    wires.clear();
    await server.close();
    faults.stop();
    logs.restore();
  });

  let wireCounter = 0;
  async function openWire(transport: FuzzTransport, user: string, setup: (w: AuthedWire) => Promise<void>): Promise<AuthedWire> {
    const src = `${sourceTagOf(user)}.fz-${transport}-${++wireCounter}`;
    const wire = await AuthedWire.open({ transport, url: server.url, token: await testToken(user), src });
    wires.add(wire);
    await wire.handshake();
    await setup(wire);
    return wire;
  }

  it(`≥ 1,000 malformed frames over both transports, auth on: exact refusals, connections keep committing, documents unchanged (seed ${SEED})`, async () => {
    assert.equal(server.config.auth.mode, 'jwt', 'the fuzz must run with authentication on');
    const frameLimits: FrameLimits = {
      maxFrameBytes: server.config.maxFrameBytes,
      maxFrameDepth: 2 * server.config.maxOpDepth + FRAME_ENVELOPE_DEPTH,
    };
    const opLimits = { maxOpBytes: server.config.maxOpBytes, maxDepth: server.config.maxOpDepth };

    // Auth is really on for every transport: no token, or a token signed with another
    // secret, gets no ShareDB agent.
    const stranger = await testToken('stranger', { secret: 'not-the-test-secret-not-the-test-secret' });
    for (const transport of FUZZ_TRANSPORTS) {
      for (const token of [null, stranger]) {
        await assert.rejects(
          AuthedWire.open({ transport, url: server.url, token, src: 'anonymous.x' }),
          /TANDEM_UNAUTHENTICATED|HTTP 401/,
          `${transport} with ${token === null ? 'no token' : 'a wrongly signed token'} must be refused`,
        );
      }
    }

    // Documents with some history, written by a stock client (token in `?token=`).
    const author = stockClientWithToken(server.url, await testToken('author'));
    closers.push(author.close);
    for (const spec of DOCS) {
      const doc = author.connection.get(spec.c, spec.d);
      await create(doc, spec.data);
      for (const op of spec.edits) await submit(doc, op);
    }
    await author.close();
    const before = new Map<string, StoredDoc>();
    for (const { c, d } of EXISTING) before.set(`${c}/${d}`, await storedDoc(server, c, d));
    const protoNames = Object.getOwnPropertyNames(Object.prototype).sort();

    // Bystanders subscribed to every document, on /sharedb and on batched socket.io: they
    // must see no op at all.
    const watchers = await Promise.all(
      (['ws', 'socket.io+batch'] as const).map((transport) =>
        openWire(transport, 'watcher', async (w) => {
          for (const { c, d } of EXISTING) await w.subscribe(c, d);
        }),
      ),
    );

    const problems: string[] = [];
    const closes: Array<FrameOutcome & { reason: string }> = [];
    const wedged: Array<FrameOutcome & { earlierFaults: number[]; why: string }> = [];
    const faulted: Array<FrameOutcome & { faults: string }> = [];
    const wrongReplies: Array<FrameOutcome & { why: string }> = [];
    const notCommitted: Array<FrameOutcome & { why: string }> = [];
    const failedTransports = new Set<FuzzTransport>();
    const uncoded: string[] = [];
    const codes = new Map<string, number>();
    /** One reply per code (ShareDB echoes the request, so it shows the frame). */
    const examples = new Map<string, string>();
    const kinds = new Map<string, number>();
    const verdicts = new Map<string, number>();
    const scratches: Scratch[] = [];
    const perTransport: string[] = [];
    let sent = 0;
    let batches = 0;

    /** Per connection: where in its inbox each frame's replies begin. */
    const framesOf = new Map<AuthedWire, Array<{ from: number; outcome: FrameOutcome }>>();
    /** The frame after which inbox entry `at` arrived (its own reply, or a late one of an earlier frame). */
    const arrivedAfter = (wire: AuthedWire, at: number): string => {
      const sentBefore = (framesOf.get(wire) ?? []).filter(({ from }) => from <= at);
      const last = sentBefore[sentBefore.length - 1];
      if (!last) return ' (before the first frame)';
      failedTransports.add(last.outcome.transport);
      return ` (arrived after frame ${last.outcome.transport} #${last.outcome.index}: ${describeFrame(last.outcome.frame, 160)})`;
    };
    const scanReplies = (wire: AuthedWire) => {
      for (const [at, { raw, msg }] of wire.inbox.entries()) {
        if (msg === null) {
          uncoded.push(`non-object reply over ${wire.transport}: ${raw.slice(0, 200)}${arrivedAfter(wire, at)}`);
          continue;
        }
        const error = replyError(msg);
        if (!error) continue;
        if (error.code === null || !STABLE_CODE.test(error.code))
          uncoded.push(`over ${wire.transport}: ${raw.slice(0, 300)}${arrivedAfter(wire, at)}`);
        const code = String(error.code);
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (!examples.has(code)) examples.set(code, raw.slice(0, 160));
      }
    };
    const retire = async (wire: AuthedWire) => {
      scanReplies(wire);
      batches += wire.batches;
      await wire.close();
      wires.delete(wire);
    };
    const scratchOf = new Map<AuthedWire, Scratch>();
    const openFuzzWire = (transport: FuzzTransport) =>
      openWire(transport, FUZZ_USER, async (w) => {
        // Subscribed and presence-subscribed, so frames hit an agent with live state.
        await w.subscribe(EXISTING[0]!.c, EXISTING[0]!.d);
        await w.subscribe(EXISTING[1]!.c, EXISTING[1]!.d);
        await w.exchange({ a: 'ps', ch: `${EXISTING[0]!.c}.${EXISTING[0]!.d}`, seq: 1 }, (m) => m.a === 'ps', 'presence subscribe');
        await w.create(SCRATCH, w.src, { n: null });
        const scratch: Scratch = { d: w.src, v: 1, uncertain: false, lastIndex: null };
        scratches.push(scratch);
        scratchOf.set(w, scratch);
        framesOf.set(w, []);
      });

    // One stream per transport, forked in a fixed order: a transport run alone replays its frames.
    const master = new Rng(SEED);
    const rngs = new Map(FUZZ_TRANSPORTS.map((t) => [t, master.fork()] as const));

    let stoppedEarly = false;
    for (const transport of TRANSPORTS) {
      if (stoppedEarly) break;
      const started = Date.now();
      const rng = rngs.get(transport)!;
      let wire = await openFuzzWire(transport);
      /** Frames on the current connection that raised a fault: a later silence is theirs. */
      let faultedOnWire: number[] = [];
      for (let index = 0; index < FRAMES_PER_TRANSPORT; index++) {
        if (wedged.length >= MAX_WEDGED) {
          stoppedEarly = true;
          problems.push(`stopped the fuzz at ${transport} #${index}: ${wedged.length} connections stopped answering`);
          break;
        }
        const frame = generateFrame(rng, {
          transport: transport === 'ws' ? 'ws' : 'socket.io',
          existing: EXISTING,
          src: wire.src,
          limits: opLimits,
        });
        const verdict = frameVerdict(frame, transport, frameLimits);
        kinds.set(frame.kind, (kinds.get(frame.kind) ?? 0) + 1);
        const verdictName = verdict.kind === 'refuse' ? verdict.code : verdict.kind;
        verdicts.set(verdictName, (verdicts.get(verdictName) ?? 0) + 1);
        const outcome: FrameOutcome = { transport, index, frame };
        faults.during = `${transport} #${index} ${describeFrame(frame)}`;
        const faultsBefore = faults.faults.length;

        const from = wire.mark();
        framesOf.get(wire)!.push({ from, outcome });
        sendFrame(wire, frame);
        sent++;
        // Frames are handled in order per connection, so the ping's answer means the frame
        // was taken in (async work it started may still finish later) and any refusal of it
        // by the transport layer (which answers at once) came before.
        const sentinel = `sentinel-${transport}-${index}`;
        /** Why the connection stopped answering after this frame, if it did. */
        let failure: string | null = null;
        let pong: WireMessage | null = null;
        try {
          pong = await wire.exchange(
            { a: 'pp', id: sentinel },
            (m) => m.a === 'pp' && m.id === sentinel,
            'the ping after the frame',
            SENTINEL_TIMEOUT_MS,
          );
        } catch (err) {
          failure = `no ping answer: ${(err as Error).message}`;
        }
        if (pong) {
          const pongAt = wire.inbox.findIndex((r, i) => i >= from && r.msg === pong);
          const wrong = checkRefusals(verdict, wire.inbox.slice(from, pongAt));
          if (wrong) wrongReplies.push({ ...outcome, why: wrong });
          if (verdict.kind === 'close')
            wrongReplies.push({ ...outcome, why: 'the connection stayed open after a frame that must close it' });
          // The same connection still commits.
          const scratch = scratchOf.get(wire)!;
          let ack: WireMessage | null = null;
          try {
            ack = await wire.submit(SCRATCH, scratch.d, { v: scratch.v, op: ['n', { r: true, i: index }] }, COMMIT_TIMEOUT_MS);
          } catch (err) {
            scratch.uncertain = true;
            failure = `no commit: ${(err as Error).message}`;
          }
          if (ack && replyError(ack)) {
            notCommitted.push({ ...outcome, why: `commit refused: ${JSON.stringify(ack.error)}` });
          } else if (ack && ack.v !== scratch.v) {
            scratch.uncertain = true;
            notCommitted.push({ ...outcome, why: `commit acknowledged at v${String(ack.v)}, expected v${scratch.v}` });
          } else if (ack) {
            scratch.v++;
            scratch.lastIndex = index;
          }
        }

        if (faults.faults.length > faultsBefore) {
          faulted.push({ ...outcome, faults: faults.describe(faults.since(faultsBefore)) });
          faultedOnWire.push(index);
        }
        if (wire.closed) {
          closes.push({ ...outcome, reason: wire.closed.reason });
          if (verdict.kind !== 'close') wrongReplies.push({ ...outcome, why: `the server closed the connection (${wire.closed.reason})` });
          else if (!/^ws close 1007/.test(wire.closed.reason))
            wrongReplies.push({ ...outcome, why: `closed with ${wire.closed.reason}, expected ws close 1007` });
        } else if (failure) {
          wedged.push({ ...outcome, earlierFaults: faultedOnWire.filter((i) => i !== index), why: failure });
        }
        if (wire.closed || failure) {
          await retire(wire);
          wire = await openFuzzWire(transport);
          faultedOnWire = [];
        }
      }
      await retire(wire);
      perTransport.push(`${transport}: ${stoppedEarly ? 'stopped early' : `${FRAMES_PER_TRANSPORT} frames`} in ${Date.now() - started} ms`);
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
    // Each scratch document holds exactly its create and the acknowledged ops, once each.
    for (const scratch of scratches) {
      if (scratch.uncertain) continue;
      const now = await storedDoc(server, SCRATCH, scratch.d);
      const expected = { v: scratch.v, ops: scratch.v, data: { n: scratch.lastIndex } };
      if (now.v !== expected.v || now.ops !== expected.ops || JSON.stringify(now.data) !== JSON.stringify(expected.data)) {
        problems.push(
          `scratch ${SCRATCH}/${scratch.d}: stored v${now.v}, ${now.ops} ops, ${JSON.stringify(now.data)}; acknowledged v${expected.v}, ${JSON.stringify(expected.data)}`,
        );
      }
    }
    for (const watcher of watchers) {
      const ops = watcher.inbox.filter(({ msg }) => msg?.a === 'op');
      if (ops.length)
        problems.push(
          `a ${watcher.transport} subscriber saw ops on untouched documents:\n${ops.map(({ raw }) => raw.slice(0, 200)).join('\n')}`,
        );
      if (watcher.closed) problems.push(`the ${watcher.transport} bystander's connection was closed: ${watcher.closed.reason}`);
    }
    const protoNow = Object.getOwnPropertyNames(Object.prototype).sort();
    if (JSON.stringify(protoNow) !== JSON.stringify(protoNames)) problems.push(`Object.prototype changed: ${protoNow.join(', ')}`);
    if (({} as Record<string, unknown>).polluted !== undefined) problems.push('Object.prototype polluted');

    // --- A fresh client reads the same documents and can edit them and new ones. ---
    const fresh = stockClientWithToken(server.url, await testToken('fresh'));
    closers.push(fresh.close);
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

    for (const watcher of watchers) {
      scanReplies(watcher);
      batches += watcher.batches;
    }
    const perFrame = (label: string, list: Array<FrameOutcome & { why: string }>) => {
      for (const f of list) failedTransports.add(f.transport);
      for (const f of list.slice(0, 20)) {
        problems.push(`${label} at frame ${f.transport} #${f.index}: ${f.why}\n    frame: ${describeFrame(f.frame)}`);
      }
      if (list.length > 20) problems.push(`… and ${list.length - 20} more (${label})`);
    };
    for (const f of faulted) {
      failedTransports.add(f.transport);
      problems.push(
        `frame ${f.transport} #${f.index} raised a process fault: ${describeFrame(f.frame)}\n    ${f.faults.split('\n').slice(0, 4).join('\n    ')}`,
      );
    }
    for (const w of wedged) {
      failedTransports.add(w.transport);
      // A fault in an earlier frame's async reply can wedge the connection only now.
      const cause = w.earlierFaults.length
        ? ` (after the fault of frame #${w.earlierFaults.join(', #')} on this connection; probably its doing)`
        : '';
      problems.push(`the connection stopped answering at frame ${w.transport} #${w.index}${cause} (${w.why}): ${describeFrame(w.frame)}`);
    }
    perFrame('wrong transport reply', wrongReplies);
    perFrame('the connection could not commit', notCommitted);
    for (const u of uncoded.slice(0, 20)) problems.push(`error reply without a stable code ${u}`);
    if (uncoded.length > 20) problems.push(`… and ${uncoded.length - 20} more uncoded replies`);

    const summary = [
      `seed ${SEED} (0x${SEED.toString(16)}): ${sent} frames (${perTransport.join('; ')}); socket.io batches received: ${batches}`,
      `kinds ${JSON.stringify(Object.fromEntries(kinds))}`,
      `transport verdicts ${JSON.stringify(Object.fromEntries(verdicts))}`,
      `error codes: ${JSON.stringify(Object.fromEntries([...codes].sort((a, b) => b[1] - a[1])))}`,
      ...[...examples].map(([code, raw]) => `  e.g. ${code}: ${raw}`),
      `connections closed by the server: ${closes.length}`,
      ...closes.map((c) => `  ${c.transport} #${c.index} (${c.reason}): ${describeFrame(c.frame, 120)}`),
    ].join('\n');
    console.log(summary.replace(/^/gm, '      '));

    if (!stoppedEarly) assert.equal(sent, TRANSPORTS.length * FRAMES_PER_TRANSPORT);
    if (process.env.FUZZ_FRAMES === undefined && process.env.FUZZ_TRANSPORTS === undefined)
      assert.ok(sent >= 1000, `only ${sent} frames sent`);
    if (TRANSPORTS.includes('socket.io+batch'))
      assert.ok(batches > 0, 'no sharedb:batch packet arrived: the batched transport was not exercised');
    const only = failedTransports.size ? ` FUZZ_TRANSPORTS=${[...failedTransports].join(',')}` : '';
    assert.equal(
      problems.length,
      0,
      `${problems.length} problem(s) with seed ${SEED}; reproduce with FUZZ_SEED=${SEED} FUZZ_FRAMES=${FRAMES_PER_TRANSPORT}${only} ` +
        `npx mocha test/integration/malformed-frames.test.ts\n${problems.join('\n')}`,
    );
  });
});
