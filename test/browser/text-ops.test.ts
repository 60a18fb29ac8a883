/**
 * The bindings' pure helpers (client/bindings/text-ops.ts), in Node: code point offsets,
 * local diffs, reading a json1 op's edit to one string, caret mapping.
 */
import assert from 'node:assert/strict';
import * as json1 from 'ot-json1';
import { type as textType } from 'ot-text-unicode';
import { ops } from '../../ot-types/index.js';
import {
  cpLength,
  cpToUtf16,
  diffToTextOp,
  mapOffset,
  stringChangeAt,
  textChanges,
  textEditOp,
  utf16ToCp,
} from '../../client/bindings/text-ops.js';

describe('bindings: text ops', () => {
  it('converts between code points and UTF-16 indexes around astral characters', () => {
    const s = 'a😀b🎉';
    assert.equal(cpLength(s), 4);
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((cp) => cpToUtf16(s, cp)),
      [0, 1, 3, 4, 6],
    );
    assert.deepEqual(
      [0, 1, 3, 4, 6].map((i) => utf16ToCp(s, i)),
      [0, 1, 2, 3, 4],
    );
    assert.equal(cpToUtf16(s, 99), s.length, 'clamped');
  });

  it('diffs with the caret as a hint, so typing into repeated characters inserts at the caret', () => {
    // "a|a" → "aa|a": the new "a" is at 1 (the caret is at 2 after typing it).
    assert.deepEqual(diffToTextOp('aa', 'aaa', 2), [1, 'a']);
    assert.deepEqual(diffToTextOp('aa', 'aaa', 1), ['a']);
    assert.deepEqual(diffToTextOp('aa', 'aaa', 3), [2, 'a']);
    assert.deepEqual(diffToTextOp('aaa', 'aa', 0), [{ d: 1 }]);
    assert.deepEqual(diffToTextOp('hello world', 'hello brave world', 12), [6, 'brave ']);
    assert.deepEqual(diffToTextOp('abc', 'aXc', 2), [1, { d: 1 }, 'X']);
    assert.deepEqual(diffToTextOp('same', 'same'), []);
  });

  it('never cuts a surrogate pair, and counts code points', () => {
    // 😀 and 😁 share their high surrogate: a UTF-16 diff would split the pair.
    assert.deepEqual(diffToTextOp('x😀', 'x😁', 3), [1, { d: 1 }, '😁']);
    assert.deepEqual(diffToTextOp('😀a', '😀😀a', 4), [1, '😀']);
  });

  it('diff ops turn any string into any other (seeded random pairs)', () => {
    let seed = 12345;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = ['a', 'b', '😀', '😁', '\n', 'é'];
    const word = (): string =>
      Array.from({ length: Math.floor(random() * 8) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    for (let i = 0; i < 500; i++) {
      const before = word();
      const after = word();
      const caret = Math.floor(random() * (after.length + 1));
      const op = diffToTextOp(before, after, caret);
      assert.equal(
        textType.apply(before, op),
        after,
        `${JSON.stringify(before)} → ${JSON.stringify(after)} caret ${caret}: ${JSON.stringify(op)}`,
      );
    }
  });

  it("reads a json1 op's edit to one string: a text edit, nothing, or something else", () => {
    const edit = ops.textInsert(['notes'], 3, 'hi');
    assert.deepEqual(stringChangeAt(edit, ['notes']), { kind: 'text', op: [3, 'hi'] });
    assert.deepEqual(stringChangeAt(edit, ['code']), { kind: 'none' });
    assert.deepEqual(stringChangeAt(null, ['notes']), { kind: 'none' });
    const both = ops.compose(ops.textInsert(['code'], 0, 'x'), ops.textDelete(['notes'], 1, 2));
    assert.deepEqual(stringChangeAt(both, ['notes']), { kind: 'text', op: [1, { d: 2 }] });
    assert.deepEqual(stringChangeAt(both, ['code']), { kind: 'text', op: ['x'] });
    // The long form of an embedded edit.
    assert.deepEqual(stringChangeAt(['notes', { et: 'text-unicode', e: ['z'] }], ['notes']), { kind: 'text', op: ['z'] });
    // Nested paths and list items.
    assert.deepEqual(stringChangeAt(ops.textInsert(['a', 0, 'b'], 0, 'q'), ['a', 0, 'b']), { kind: 'text', op: ['q'] });
    assert.deepEqual(stringChangeAt(ops.textInsert(['a', 1, 'b'], 0, 'q'), ['a', 0, 'b']), { kind: 'none' });
    for (const op of [
      ops.replace(['notes'], 'new'),
      ops.remove(['notes']),
      ops.move(['notes'], ['old']),
      ops.replace([], { notes: 'x' }),
      ops.insert(['a', 0], 'shifts the list'),
    ]) {
      const path = JSON.stringify(op).includes('"a"') ? ['a', 0, 'b'] : ['notes'];
      assert.equal(stringChangeAt(op, path).kind, 'other', JSON.stringify(op));
    }
  });

  it('maps offsets through a text op: a caret stays before text inserted at it, a selection start moves past it', () => {
    const op = [2, 'XY', 3, { d: 2 }];
    assert.equal(mapOffset(op, 0), 0);
    assert.equal(mapOffset(op, 2, -1), 2);
    assert.equal(mapOffset(op, 2, 1), 4);
    assert.equal(mapOffset(op, 4), 6);
    assert.equal(mapOffset(op, 6), 7, 'inside the deleted range: to its start');
    assert.equal(mapOffset(op, 7), 7, 'at its end: to its start');
    assert.equal(mapOffset(op, 9), 9);
    // Same answers as json1's own position transform for carets.
    for (let pos = 0; pos <= 9; pos++) {
      const moved = json1.type.transformPosition(['s', pos], textEditOp(['s'], op));
      assert.equal(mapOffset(op, pos, -1), moved?.[1], `pos ${pos}`);
    }
  });

  it('lists a text op as replacements in the old string', () => {
    assert.deepEqual(textChanges([2, 'XY', 3, { d: 2 }, 'Z']), [
      { fromCp: 2, toCp: 2, insert: 'XY' },
      { fromCp: 5, toCp: 7, insert: 'Z' },
    ]);
    assert.deepEqual(textChanges([{ d: 'ab' }, 'c']), [{ fromCp: 0, toCp: 2, insert: 'c' }]);
  });
});
