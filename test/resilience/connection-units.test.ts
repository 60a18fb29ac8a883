/**
 * The pieces of the connection limits that need no server: FramePacer (frames per turn,
 * holds), RefusalPenalty (how long a refusing connection is held), SocketIoSender with a budget (pre-encoded packets, drops), RefusalLog (lines per second).
 */
import assert from 'node:assert/strict';
import type { Socket as ServerSocket } from 'socket.io';
import { SHAREDB_BATCH_EVENT, SHAREDB_EVENT } from '../../client/protocol.js';
import { SendBudget, type Overflow } from '../../server/limits/connection-budget.js';
import type { EngineOutbox } from '../../server/limits/connection-outbox.js';
import { FRAMES_PER_TURN, FramePacer } from '../../server/limits/connection-pacing.js';
import { RefusalLog } from '../../server/limits/connection-refusals.js';
import { MAX_REFUSAL_HOLD_MS, RefusalPenalty } from '../../server/limits/refusal-penalty.js';
import { waitFor } from '../helpers/wait.js';
import type { Logger } from '../../server/ops/logger.js';
import { SocketIoSender } from '../../server/transport/socketio-sender.js';
import { Turn } from '../../server/turn.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('resilience: FramePacer', () => {
  it('takes FRAMES_PER_TURN frames a turn, in order, pausing the input while frames wait', async () => {
    const taken: number[] = [];
    const calls: string[] = [];
    const pacer = new FramePacer(
      (frame) => taken.push(frame as number),
      { pause: () => calls.push('pause'), resume: () => calls.push('resume') },
      Infinity,
      () => calls.push('overflow'),
    );
    const frames = 2 * FRAMES_PER_TURN + 5;
    for (let i = 0; i < frames; i++) pacer.offer(i);
    assert.equal(taken.length, FRAMES_PER_TURN);
    assert.deepEqual(calls, ['pause']);
    let idle = false;
    pacer.whenIdle(() => (idle = true));
    await nextTurn();
    assert.equal(taken.length, 2 * FRAMES_PER_TURN);
    pacer.offer(frames); // behind the ones still waiting
    await nextTurn();
    assert.deepEqual(
      taken,
      Array.from({ length: frames + 1 }, (_, i) => i),
    );
    assert.deepEqual(calls, ['pause', 'resume']);
    assert.ok(idle);
    await nextTurn();
  });

  it('drops a client whose waiting frames pass the bound, and forgets them', async () => {
    const taken: unknown[] = [];
    let overflows = 0;
    const pacer = new FramePacer(
      (frame) => taken.push(frame),
      {},
      1000,
      () => overflows++,
    );
    for (let i = 0; i < FRAMES_PER_TURN + 20; i++) pacer.offer('x'.repeat(100));
    assert.equal(overflows, 1);
    pacer.offer('late');
    await nextTurn();
    assert.equal(taken.length, FRAMES_PER_TURN);
  });

  it('hold: takes nothing until the hold ends, then the waiting frames in order; the input is paused meanwhile', async () => {
    const taken: number[] = [];
    const calls: string[] = [];
    const pacer = new FramePacer(
      (frame) => taken.push(frame as number),
      { pause: () => calls.push('pause'), resume: () => calls.push('resume') },
      Infinity,
      () => calls.push('overflow'),
    );
    pacer.offer(0);
    const heldAt = performance.now();
    pacer.hold(40);
    pacer.hold(10); // a shorter hold does not cut the longer one short
    assert.deepEqual(calls, ['pause']);
    for (let i = 1; i <= 5; i++) pacer.offer(i);
    await nextTurn();
    assert.deepEqual(taken, [0], 'nothing taken while held');
    let idle = false;
    pacer.whenIdle(() => (idle = true));
    await waitFor(() => idle, { what: 'the frames after the hold' });
    assert.ok(performance.now() - heldAt >= 35, 'not before the hold ends');
    assert.deepEqual(taken, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(calls, ['pause', 'resume']);
  });

  it('hold: with nothing waiting the input resumes when it ends; release() ends it at once; discard() leaves no timer', async () => {
    const calls: string[] = [];
    const taken: unknown[] = [];
    const pacer = new FramePacer(
      (frame) => taken.push(frame),
      { pause: () => calls.push('pause'), resume: () => calls.push('resume') },
      Infinity,
      () => undefined,
    );
    pacer.hold(5);
    await waitFor(() => calls.length === 2, { what: 'the input resumed' });
    assert.deepEqual(calls, ['pause', 'resume']);

    pacer.hold(60_000);
    pacer.offer('after release');
    pacer.release();
    await nextTurn();
    assert.deepEqual(taken, ['after release']);
    assert.deepEqual(calls, ['pause', 'resume', 'pause', 'resume']);

    // A hold that outlived its client would keep the process alive for a minute (mocha without --exit notices).
    pacer.hold(60_000);
    pacer.discard();
    pacer.offer('gone');
    await nextTurn();
    assert.deepEqual(taken, ['after release']);
  });
});

describe('resilience: RefusalPenalty', () => {
  it('lets twice the rate through at once, then holds each refusal for its share of a second, at most MAX_REFUSAL_HOLD_MS', () => {
    let now = 0;
    const penalty = new RefusalPenalty(20, () => now);
    for (let i = 0; i < 40; i++) assert.equal(penalty.refused(), 0, `refusal ${i + 1} is within the burst`);
    assert.equal(penalty.refused(), 50, 'one refusal past the budget: 1/20 s');
    assert.equal(penalty.refused(), 100);
    let hold = 0;
    for (let i = 0; i < 100; i++) hold = penalty.refused();
    assert.equal(hold, MAX_REFUSAL_HOLD_MS, 'the debt stops at one second');
    // Honouring the hold pays the debt back: after it, one refusal costs 1/20 s again.
    now += MAX_REFUSAL_HOLD_MS;
    assert.equal(penalty.refused(), 50);
    // A client that stopped for long enough is back to its whole burst.
    now += 10_000;
    for (let i = 0; i < 40; i++) assert.equal(penalty.refused(), 0);
  });

  it('0 a second means never held', () => {
    const penalty = new RefusalPenalty(0);
    for (let i = 0; i < 1000; i++) assert.equal(penalty.refused(), 0);
  });
});

describe('resilience: SocketIoSender with a budget', () => {
  function boundedSender(batch: boolean, max: number) {
    const written: string[] = [];
    let held = 0;
    const overflows: Overflow[] = [];
    const outbox = {
      write: (packet: string) => {
        written.push(packet);
        held += packet.length;
      },
      buffered: () => held,
    } as unknown as EngineOutbox;
    const socket = { connected: true, handshake: { query: batch ? { tandemBatch: '1' } : {} } } as unknown as ServerSocket;
    const turn = new Turn();
    const sender = new SocketIoSender(socket, turn, {
      outbox,
      budget: new SendBudget(max, turn, () => held),
      onOverflow: (o) => overflows.push(o),
    });
    return { sender, written, overflows, drain: () => (held = 0) };
  }

  it('writes what socket.io would encode: one event per message, or one batch per turn', async () => {
    const messages = [
      { a: 'op', v: 1, op: ['x', { i: 'é"\n' }] },
      { a: 's', c: 'c', d: 'd' },
    ];
    const single = boundedSender(false, 1 << 20);
    for (const m of messages) single.sender.send(m);
    await nextTurn();
    assert.deepEqual(
      single.written,
      messages.map((m) => `2${JSON.stringify([SHAREDB_EVENT, m])}`),
    );
    const batched = boundedSender(true, 1 << 20);
    for (const m of messages) batched.sender.send(m);
    await nextTurn();
    assert.deepEqual(batched.written, [`2${JSON.stringify([SHAREDB_BATCH_EVENT, messages])}`]);
  });

  it('drops a client that took nothing since the last write once the next message would pass the budget', async () => {
    const { sender, written, overflows, drain } = boundedSender(true, 1000);
    sender.send({ s: 'x'.repeat(600) });
    await nextTurn();
    sender.send({ s: 'y'.repeat(300) }); // 600 held, nothing taken: 900 < 1000 fits
    await nextTurn();
    drain(); // the client read everything
    sender.send({ s: 'z'.repeat(3000) }); // onto an empty buffer: any size goes
    await nextTurn();
    assert.equal(written.length, 3);
    sender.send({ s: 'w' }); // ~3000 held, nothing taken since: over the budget
    assert.equal(overflows.length, 1);
    assert.equal(overflows[0]!.reading, false);
    sender.send({ s: 'after' });
    await nextTurn();
    assert.equal(written.length, 3, 'nothing is sent once dropped');
  });
});

describe('resilience: RefusalLog', () => {
  it('logs at most N refusals per second and one line counting the rest', () => {
    const lines: Array<[Record<string, unknown>, string]> = [];
    const line = (fields: Record<string, unknown>, msg: string) => lines.push([fields, msg]);
    const logger = { info: line, warn: line } as unknown as Logger;
    let now = 10_000;
    const log = new RefusalLog(logger, 3, () => now);
    for (let i = 0; i < 10; i++) log.record({ code: 'X', action: 'op', collection: 'c', id: `d-${i}` });
    assert.equal(lines.length, 3);
    assert.deepEqual(lines[0], [{ code: 'X', action: 'op', collection: 'c', id: 'd-0' }, 'request refused']);
    now += 1_000;
    log.record({ code: 'Y' });
    assert.deepEqual(lines.slice(3), [
      [{ refusalsNotLogged: 7 }, '7 refusals not logged'],
      [{ code: 'Y' }, 'request refused'],
    ]);
    log.close();
    assert.equal(lines.length, 5, 'nothing left to summarise');
  });
});
