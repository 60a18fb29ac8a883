import assert from 'node:assert/strict';
import * as json1 from 'ot-json1';
import { checkOpAgainst, ops, type JSONOp } from '../../ot-types/index.js';

describe('checkOpAgainst: an op checked against the document it is for', () => {
  const doc = { title: 'Hello 😀 world', n: 3, list: ['a', 'b'], meta: { owner: 'ada' } };

  it('accepts ops that fit', () => {
    for (const op of [
      ops.textDelete(['title'], 0, 'Hello'),
      ops.textDelete(['title'], 6, '😀'),
      ops.textDelete(['title'], 0, 5),
      ops.textInsert(['title'], 14, '!'),
      ops.add(['n'], 2),
      ops.remove(['list', 1]),
      ops.replace(['meta', 'owner'], 'bob'),
      ['meta', 'owner', { r: 'ada' }] as JSONOp,
      ops.move(['list', 0], ['list', 1]),
      ops.compose(ops.textInsert(['title'], 0, 'x'), ops.add(['n'], 1)),
    ]) {
      assert.equal(checkOpAgainst(doc, op), null, JSON.stringify(op));
    }
  });

  it('names the path and the reason for ops that do not', () => {
    assert.deepEqual(checkOpAgainst(doc, ops.textDelete(['title'], 0, 'XXXXX')), {
      path: ['title'],
      reason: 'deletes "XXXXX" at 0 but the text there is "Hello"',
    });
    assert.deepEqual(checkOpAgainst(doc, ops.textInsert(['titel'], 0, 'x')), {
      path: ['titel'],
      reason: 'a text edit needs a string, found nothing',
    });
    assert.match(checkOpAgainst(doc, ops.textInsert(['n'], 0, 'x'))!.reason, /needs a string, found 3/);
    assert.match(checkOpAgainst(doc, ops.textDelete(['title'], 10, 20))!.reason, /deletes 20 characters at 10 but the text has 13/);
    assert.deepEqual(checkOpAgainst(doc, ops.add(['title'], 1)), { path: ['title'], reason: 'adding needs a number there' });
    assert.deepEqual(checkOpAgainst(doc, ops.remove(['list', 5])), { path: ['list', 5], reason: 'removes a value that is not there' });
    assert.deepEqual(checkOpAgainst(doc, ['meta', 'owner', { r: 'bob' }] as JSONOp), {
      path: ['meta', 'owner'],
      reason: 'removes a value other than the one there',
    });
  });

  it('checks the edits of a composed op against the document after its inserts and removals', () => {
    const items = { items: [0, [1, 2]], l: ['b', 7] };
    // Insert then add at the same place: json1 applies it; the document before has nothing there.
    const insertThenAdd = ops.compose(ops.insert(['items', 1, 2], 3), ops.add(['items', 1, 2], 2));
    assert.deepEqual(json1.type.apply(items, insertThenAdd), { items: [0, [1, 2, 5]], l: ['b', 7] });
    assert.equal(checkOpAgainst(items, insertThenAdd), null, JSON.stringify(insertThenAdd));
    const insertThenEdit: JSONOp = ['l', [0, { i: 'x' }], [1, { es: ['a'] }]];
    assert.equal(checkOpAgainst(items, insertThenEdit), null);
    // An insert shifts the list: the add lands on 'b' (json1 would make it "b1").
    assert.deepEqual(checkOpAgainst(items, ['l', [0, { i: 'x' }], [1, { ena: 1 }]] as JSONOp), {
      path: ['l', 1],
      reason: 'adding needs a number there',
    });
    // A removal names a value of the document before the op, whatever the op inserts there.
    assert.equal(checkOpAgainst(items, ['l', 0, { r: 'b', i: 'c', es: ['d'] }] as JSONOp), null);
    assert.deepEqual(checkOpAgainst(items, ['l', 0, { r: 'c', i: 'c' }] as JSONOp), {
      path: ['l', 0],
      reason: 'removes a value other than the one there',
    });
  });
});
