import assert from 'node:assert/strict';
import * as json1 from 'ot-json1';
import { ops, transformPresence, tandemJson1, type Json1Presence } from '../../ot-types/index.js';
import { transformTextOffset } from '../../ot-types/presence.js';

const at = (path: Json1Presence['path'], anchor: number, head = anchor): Json1Presence => ({ path, anchor, head });

describe('presence: json1 transformPresence', () => {
  it("shifts a cursor by inserts and deletes strictly before it, for own and others' ops", () => {
    for (const own of [true, false]) {
      assert.deepEqual(transformPresence(at(['t'], 5), ops.textInsert(['t'], 2, 'abc'), own), at(['t'], 8));
      assert.deepEqual(transformPresence(at(['t'], 5), ops.textDelete(['t'], 1, 2), own), at(['t'], 3));
      assert.deepEqual(transformPresence(at(['t'], 5), ops.textInsert(['t'], 7, 'zz'), own), at(['t'], 5));
    }
  });

  it("an insert exactly at the cursor moves it only for the op's author", () => {
    assert.deepEqual(transformPresence(at(['t'], 5), ops.textInsert(['t'], 5, 'ab'), true), at(['t'], 7));
    assert.deepEqual(transformPresence(at(['t'], 5), ops.textInsert(['t'], 5, 'ab'), false), at(['t'], 5));
  });

  it('a delete spanning the cursor pulls it to the start of the deletion', () => {
    assert.deepEqual(transformPresence(at(['t'], 5), ops.textDelete(['t'], 3, 4), false), at(['t'], 3));
    assert.deepEqual(transformPresence(at(['t'], 2, 8), ops.textDelete(['t'], 4, 2), false), at(['t'], 2, 6));
  });

  it('counts Unicode code points, not UTF-16 units', () => {
    assert.deepEqual(transformPresence(at(['t'], 3), ops.textInsert(['t'], 0, '😀x'), false), at(['t'], 5));
    assert.equal(transformTextOffset(3, [1, { d: '😀' }], false), 2);
  });

  it('ignores edits to other strings and follows list inserts and moves', () => {
    assert.deepEqual(transformPresence(at(['a'], 4), ops.textInsert(['b'], 0, 'xx'), false), at(['a'], 4));
    const inList = at(['items', 1, 'text'], 2);
    assert.deepEqual(transformPresence(inList, ops.insert(['items', 0], { text: '' }), false), at(['items', 2, 'text'], 2));
    assert.deepEqual(transformPresence(inList, ops.move(['items', 1], ['items', 3]), false), at(['items', 3, 'text'], 2));
  });

  it('follows a string that is moved and edited by the same op', () => {
    const doc = { a: 'hello', b: null };
    const op = ops.compose(ops.move(['a'], ['c']), ops.textInsert(['c'], 0, 'XY'));
    const moved = transformPresence(at(['a'], 3), op, false);
    assert.deepEqual(moved, at(['c'], 5));
    const after = json1.type.apply(doc, op) as { c: string };
    assert.equal(after.c[5], doc.a[3]);
  });

  it('returns null when the value under the presence is removed', () => {
    assert.equal(transformPresence(at(['t'], 1), ops.remove(['t']), false), null);
    assert.equal(transformPresence({ path: ['items', 0] }, ops.remove(['items', 0]), false), null);
  });

  it('is the transformPresence of the registered type, and keeps user data', () => {
    const p = { path: ['t'], anchor: 1, head: 1, user: { name: 'ann' } };
    assert.deepEqual(tandemJson1.transformPresence(p, ops.textInsert(['t'], 0, 'a'), false), { ...p, anchor: 2, head: 2 });
  });

  it('keeps a cursor on the same character through a seeded stream of edits around it', () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let text = 'abcdefghijklmnopqrstuvwxyz';
    let cursor = 13; // before 'n'
    const marked = text[cursor];
    for (let i = 0; i < 300; i++) {
      // Inserts anywhere except exactly at the cursor; deletes of one character other than it.
      const own = rand(2) === 0;
      let op;
      if (rand(3) === 0) {
        const candidates = [...Array(text.length).keys()].filter((k) => k !== cursor);
        op = ops.textDelete(['t'], candidates[rand(candidates.length)]!, 1);
      } else {
        const candidates = [...Array(text.length + 1).keys()].filter((k) => k !== cursor);
        op = ops.textInsert(['t'], candidates[rand(candidates.length)]!, 'Q');
      }
      text = (json1.type.apply({ t: text }, op) as { t: string }).t;
      cursor = (transformPresence(at(['t'], cursor), op, own) as Json1Presence).anchor!;
      assert.equal(text[cursor], marked, `step ${i}`);
    }
  });
});
