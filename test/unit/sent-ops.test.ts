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
      assert.equal(sent.shouldSend(op(4)), false);
      assert.equal(sent.shouldSend(op(4, 'd2')), false, 'other documents are kept');
    });
  }

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
