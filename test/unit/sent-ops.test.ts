import assert from 'node:assert/strict';
import { SentOps } from '../../server/transport/sent-ops.js';

const op = (v: number, d = 'd1') => ({ a: 'op', c: 'notes', d, v, src: 'other', seq: v, op: [v] });
const ack = (v: number, d = 'd1') => ({ a: 'op', c: 'notes', d, v, src: 'me', seq: 1 });

/** Whether each message, offered in turn, would be sent. */
const sends = (sent: SentOps, messages: Array<Record<string, unknown>>) => messages.map((m) => sent.shouldSend(m));

describe('SentOps: which op messages repeat one already sent on the connection', () => {
  it('skips an op version sent before, and nothing else', () => {
    const sent = new SentOps();
    assert.deepEqual(sends(sent, [op(5), op(6), op(5), op(6), op(7)]), [true, true, false, false, true]);
    // Another document, another collection: their own versions.
    assert.deepEqual(sends(sent, [op(6, 'd2'), { ...op(6), c: 'other' }]), [true, true]);
  });

  it('never skips an ack, and an acked version counts as the client having that op', () => {
    const sent = new SentOps();
    sent.shouldSend(op(3));
    assert.deepEqual(sends(sent, [ack(4), ack(4), op(4), op(5), op(5)]), [true, true, false, true, false]);
  });

  it('keeps versions sent out of order, and only those', () => {
    const sent = new SentOps();
    sent.shouldSend(op(10));
    assert.deepEqual(sends(sent, [op(13), op(12), op(11)]), [true, true, true]);
    assert.deepEqual(sends(sent, [op(10), op(11), op(12), op(13)]), [false, false, false, false]);
    assert.deepEqual(sends(sent, [op(9), op(9), op(7), op(8), op(7), op(14)]), [true, false, true, true, false, true]);
  });

  it('lets through create and delete ops once, errors and other messages always', () => {
    const sent = new SentOps();
    const createOp = { a: 'op', c: 'notes', d: 'd1', v: 0, src: 'x', seq: 1, create: { type: 'json1', data: {} } };
    assert.equal(sent.shouldSend(createOp), true);
    assert.equal(sent.shouldSend(createOp), false);
    const deleteOp = { a: 'op', c: 'notes', d: 'd1', v: 1, src: 'x', seq: 2, del: true };
    assert.equal(sent.shouldSend(deleteOp), true);
    assert.equal(sent.shouldSend(deleteOp), false);
    const refusal = { ...op(1), error: { code: 'ERR_X', message: 'no' } };
    assert.equal(sent.shouldSend(refusal), true);
    const fetchReply = { a: 'f', c: 'notes', d: 'd1', data: { v: 1 } };
    assert.equal(sent.shouldSend(fetchReply), true);
    assert.equal(sent.shouldSend(fetchReply), true);
  });

  for (const request of [
    { a: 's', c: 'notes', d: 'd1', v: 2 },
    { a: 'f', c: 'notes', d: 'd1', v: 2 },
    { a: 'u', c: 'notes', d: 'd1' },
    { a: 'bs', c: 'notes', b: { d1: 2, d9: 1 } },
    { a: 'bf', c: 'notes', b: { d1: 2 } },
    { a: 'bu', c: 'notes', b: ['d9', 'd1'] },
    { a: 'bs', c: 'notes', b: ['d1'] },
  ]) {
    it(`forgets what a document was sent when the client sends '${request.a}' naming it`, () => {
      const sent = new SentOps();
      for (const v of [2, 3, 4]) sent.shouldSend(op(v));
      sent.shouldSend(op(4, 'd2'));
      sent.requested(request);
      for (const v of [2, 3, 4]) assert.equal(sent.shouldSend(op(v)), true, `v${v} again`);
      assert.equal(sent.shouldSend(op(4, 'd2')), false, 'other documents are kept');
      // ShareDB's reply echoes the request: from then on d1's ops are recorded again.
      assert.equal(sent.shouldSend(request.b ? { a: request.a, c: request.c, b: request.b } : { a: request.a, c: 'notes', d: 'd1' }), true);
      assert.deepEqual(sends(sent, [op(4), op(4)]), [true, false]);
    });
  }

  it('records nothing for a document between a fetch and its reply: the client may drop ops ahead of it meanwhile', () => {
    // The client is at version 5: op 5 went missing on the way, op 6 arrives ahead of it, the
    // client drops it and fetches from 5. While that fetch is in flight ShareDB's client drops
    // every op ahead of its version, trusting the reply to bring them.
    const sent = new SentOps();
    assert.deepEqual(sends(sent, [op(4), op(6)]), [true, true]);
    sent.requested({ a: 'f', c: 'notes', d: 'd1', v: 5 });
    assert.equal(sent.shouldSend(op(7)), true, 'op 7 from the subscription, dropped by the client');
    // The reply: the ops from 5 on, then the fetch's answer. Op 7 must come again.
    assert.deepEqual(sends(sent, [op(5), op(6), op(7), { a: 'f', c: 'notes', d: 'd1' }]), [true, true, true, true]);
    assert.deepEqual(sends(sent, [op(8), op(8), op(7, 'd2'), op(7, 'd2')]), [true, false, true, false]);
  });

  it('ends the window on a bulk reply that names its documents in `data`, and on a refusal', () => {
    const sent = new SentOps();
    sent.requested({ a: 'bs', c: 'notes', b: ['d1', 'd2'] });
    sent.requested({ a: 'f', c: 'notes', d: 'd3', v: 1 });
    assert.deepEqual(sends(sent, [op(1), op(1), op(1, 'd3'), op(1, 'd3')]), [true, true, true, true]);
    sent.shouldSend({ a: 'bs', c: 'notes', data: { d1: { v: 1 }, d2: { v: 0 } } });
    sent.shouldSend({ a: 'f', c: 'notes', d: 'd3', v: 1, error: { code: 'TANDEM_RATE_LIMITED', message: 'wait' } });
    assert.deepEqual(sends(sent, [op(2), op(2), op(2, 'd3'), op(2, 'd3')]), [true, false, true, false]);
  });

  it('two requests for a document in flight: recording waits for both replies', () => {
    const sent = new SentOps();
    sent.requested({ a: 'f', c: 'notes', d: 'd1', v: 1 });
    sent.requested({ a: 's', c: 'notes', d: 'd1', v: 1 });
    sent.shouldSend({ a: 'f', c: 'notes', d: 'd1' });
    assert.deepEqual(sends(sent, [op(1), op(1)]), [true, true]);
    sent.shouldSend({ a: 's', c: 'notes', d: 'd1' });
    assert.deepEqual(sends(sent, [op(2), op(2)]), [true, false]);
  });

  it('skips nothing on a connection that keeps more than maxDocs requests unanswered', () => {
    const sent = new SentOps(2);
    sent.shouldSend(op(1));
    for (const d of ['a', 'b', 'c']) sent.requested({ a: 'f', c: 'notes', d, v: 0 });
    assert.deepEqual(sends(sent, [op(1), op(1), op(2, 'a'), op(2, 'a')]), [true, true, true, true]);
  });

  it('keeps what was sent across a submit and other requests', () => {
    const sent = new SentOps();
    sent.shouldSend(op(2));
    sent.requested({ a: 'op', c: 'notes', d: 'd1', v: 2, src: 'me', seq: 1, op: [] });
    sent.requested({ a: 'qs', c: 'notes', id: 1, q: {} });
    sent.requested({ a: 'nf', c: 'notes', d: 'd1', v: 1 });
    assert.equal(sent.shouldSend(op(2)), false);
  });

  it('forgets everything past maxDocs documents, then tracks again', () => {
    const sent = new SentOps(2);
    sent.shouldSend(op(1, 'a'));
    sent.shouldSend(op(1, 'b'));
    assert.equal(sent.shouldSend(op(1, 'a')), false);
    sent.shouldSend(op(1, 'c'));
    assert.equal(sent.shouldSend(op(1, 'a')), true);
    assert.equal(sent.shouldSend(op(1, 'c')), false);
  });
});
