/**
 * The cached document's tail of recent ops (server/storage/snapshot-cache.ts): contiguous
 * versions ending at the newest op, bounded in count and bytes, counted in the cache budget.
 */
import assert from 'node:assert/strict';
import { extendTail, OP_TAIL_BYTES, OP_TAIL_LENGTH, SnapshotCache, type OpTail } from '../../server/storage/snapshot-cache.js';

/** The versions a tail claims to hold, checked against what each stored JSON says it is. */
function versionsOf(tail: OpTail): number[] {
  return tail.ops.map((json, i) => {
    const v = tail.from + i;
    assert.equal((JSON.parse(json) as { v: number }).v, v, `op at index ${i} is v${v}`);
    return v;
  });
}

const opJson = (v: number, pad = 0) => JSON.stringify({ v, op: ['t', { es: ['x'.repeat(pad)] }] });

describe('op tail of a cached document', function () {
  it('holds the latest ops in order, at most OP_TAIL_LENGTH, and never loses the newest', function () {
    let tail: OpTail | undefined;
    for (let v = 10; v < 10 + 3 * OP_TAIL_LENGTH; v++) {
      tail = extendTail(tail, v, opJson(v));
      const versions = versionsOf(tail);
      assert.equal(versions.at(-1), v);
      assert.ok(versions.length <= OP_TAIL_LENGTH);
      assert.equal(
        tail.bytes,
        tail.ops.reduce((n, op) => n + op.length, 0),
      );
    }
    assert.ok(tail!.ops.length >= OP_TAIL_LENGTH / 2);
  });

  it('starts over when an op does not follow the tail (another process committed in between)', function () {
    const tail = extendTail(extendTail(undefined, 5, opJson(5)), 6, opJson(6));
    const gap = extendTail(tail, 9, opJson(9));
    assert.deepEqual(versionsOf(gap), [9]);
    // The tail it came from is left as it was (a write that is undone keeps the old entry).
    assert.deepEqual(versionsOf(tail), [5, 6]);
  });

  it('drops the oldest ops past OP_TAIL_BYTES, keeping one op however large', function () {
    const big = Math.ceil(OP_TAIL_BYTES / 3);
    let tail: OpTail | undefined;
    for (let v = 0; v < 10; v++) {
      tail = extendTail(tail, v, opJson(v, big));
      assert.ok(tail.bytes - tail.ops.at(-1)!.length <= OP_TAIL_BYTES, `v${v}: ${tail.bytes} bytes`);
      assert.equal(versionsOf(tail).at(-1), v);
    }
    const huge = extendTail(tail, 10, opJson(10, 2 * OP_TAIL_BYTES));
    assert.equal(versionsOf(huge).at(-1), 10);
    assert.ok(huge.ops.length >= 1);
  });

  it('counts in the cache budget, and dropping the tails gives those bytes back', function () {
    const cache = new SnapshotCache(1 << 20);
    const tail = extendTail(undefined, 1, opJson(1, 1000));
    const snapshot = { id: 'd', v: 2, type: 'json1', data: {}, m: null };
    cache.set('c\u0000d', { snapshot, bytes: 2 + tail.bytes, storedV: 2, dirtySince: null, tail });
    assert.equal(cache.bytes, 2 + tail.bytes);
    cache.dropTails();
    assert.equal(cache.bytes, 2);
    assert.equal(cache.peek('c\u0000d')!.tail, undefined);
  });
});
