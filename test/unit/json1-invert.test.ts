/**
 * tandemJson1.invert refuses an op that removes values it does not carry (`r: true`): json1
 * would invert it into inserting `true`, and a client rolling it back would corrupt its copy.
 */
import assert from 'node:assert/strict';
import type { JSONOp } from 'ot-json1';
import { tandemJson1 } from '../../ot-types/index.js';

describe('tandemJson1.invert', () => {
  it('refuses a removal without its value, at any depth and beside other components', () => {
    for (const op of [
      ['a', { r: true }],
      ['a', 'b', 0, { r: true }],
      [
        ['a', { i: 1 }],
        ['b', ['c', { r: true }], ['d', { es: ['x'] }]],
      ],
    ] as JSONOp[]) {
      assert.throws(() => tandemJson1.invert(op), /not invertible/, JSON.stringify(op));
    }
  });

  it('inverts a removal that carries its value, and an insert whose value holds a key named r', () => {
    assert.deepEqual(tandemJson1.invert(['a', { r: 5 }]), ['a', { i: 5 }]);
    assert.deepEqual(tandemJson1.invert(['a', { i: { r: true } }]), ['a', { r: { r: true } }]);
    assert.equal(tandemJson1.invert(null), null);
  });
});
