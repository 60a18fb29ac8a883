import assert from 'node:assert/strict';
import { checkJsonLimits } from '../../ot-types/index.js';

/**
 * MAX_OP_BYTES counts UTF-8 bytes of the JSON; checkJsonLimits skips encoding a text that
 * cannot be over the limit (3 bytes per UTF-16 unit at most). These values sit on both sides
 * of that shortcut and of the limit itself.
 */
describe('checkJsonLimits: op size in UTF-8 bytes of its JSON', () => {
  const limits = { maxOpBytes: 60, maxDepth: 8 };
  const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');

  it('accepts a value of exactly the limit and refuses one byte more, in ASCII', () => {
    const at = 'x'.repeat(58); // 58 + 2 quotes
    assert.equal(bytesOf(at), 60);
    assert.equal(checkJsonLimits(at, limits, 'op'), null);
    assert.deepEqual(checkJsonLimits(`${at}x`, limits, 'op'), { kind: 'too-large', message: 'op is 61 bytes; the limit is 60' });
  });

  it('counts three bytes for a character such as € where the UTF-16 length alone would pass', () => {
    // 18 €: 20 units, 56 bytes (within the shortcut); 19: 21 units, 59 bytes (encoded, within);
    // 20: 22 units, 62 bytes (over).
    for (const [count, bytes] of [
      [18, 56],
      [19, 59],
    ] as const) {
      const value = '€'.repeat(count);
      assert.equal(bytesOf(value), bytes);
      assert.equal(checkJsonLimits(value, limits, 'op'), null, `${count} €`);
    }
    assert.deepEqual(checkJsonLimits('€'.repeat(20), limits, 'op'), { kind: 'too-large', message: 'op is 62 bytes; the limit is 60' });
  });

  it('counts four bytes for a character outside the BMP (two UTF-16 units)', () => {
    const within = ['p', { i: '😀'.repeat(11) }]; // 36 units: encoded, 58 bytes
    assert.equal(bytesOf(within), 58);
    assert.equal(checkJsonLimits(within, limits, 'op'), null);
    const over = ['p', { i: '😀'.repeat(12) }];
    assert.equal(bytesOf(over), 62);
    assert.deepEqual(checkJsonLimits(over, limits, 'op'), { kind: 'too-large', message: 'op is 62 bytes; the limit is 60' });
  });

  it('still refuses a value nested deeper than the limit however short it is', () => {
    assert.equal(checkJsonLimits([[[[[[[[1]]]]]]]], limits, 'op'), null);
    assert.equal(checkJsonLimits([[[[[[[[[1]]]]]]]]], limits, 'document')?.kind, 'too-deep');
  });
});
