/**
 * client/text-window.ts against ot-text-unicode itself: the windowed transform and compose
 * of a long text op with a short one must equal the library's results exactly (or throw
 * where it throws). Seeded random documents with astral characters; long ops built the way
 * the undo history builds them (many edits composed, deletes with and without their text).
 */
import assert from 'node:assert/strict';
import * as textUnicode from 'ot-text-unicode';
import type { TextOp } from 'ot-text-unicode';
import { composeText, transformText } from '../../client/text-window.js';
import { Rng } from '../fuzz/rng.js';

const text = textUnicode.type;
const CASES = Number(process.env.TEXT_WINDOW_CASES ?? 4000);
const PIECES = ['a', 'b', 'xy', ' ', 'é', '中', '🦊', '🌍', '👍🏽', 'q🦊z'];

function randomText(rng: Rng, pieces: number): string {
  let s = '';
  for (let i = 0; i < pieces; i++) s += rng.pick(PIECES);
  return s;
}

/** One random edit of `doc`: an insert or a delete (with its text, or maybe just its length). */
function edit(rng: Rng, doc: string, invertible = false): TextOp {
  const length = [...doc].length;
  if (length > 0 && rng.chance(0.45)) {
    const at = rng.int(length);
    const removed = [...doc].slice(at, at + rng.range(1, 4)).join('');
    return textUnicode.remove(at, invertible || rng.chance(0.5) ? removed : [...removed].length) as TextOp;
  }
  return textUnicode.insert(rng.range(0, length), randomText(rng, rng.range(1, 2))) as TextOp;
}

/** `count` random edits composed, and the document they apply to and produce. */
function composed(rng: Rng, doc: string, count: number, invertible = false): { op: TextOp; after: string } {
  let op: TextOp = [];
  let after = doc;
  for (let i = 0; i < count; i++) {
    const e = edit(rng, after, invertible);
    op = text.compose(op, e);
    after = text.apply(after, e);
  }
  return { op, after };
}

function outcome(run: () => TextOp): TextOp | 'throws' {
  try {
    return run();
  } catch {
    return 'throws';
  }
}

describe('text-window: windowed ot-text-unicode transform and compose', () => {
  it(`equals the library on ${CASES} seeded long/short pairs`, () => {
    let long = 0;
    for (let seed = 1; seed <= CASES; seed++) {
      const rng = new Rng(seed);
      const doc = randomText(rng, rng.range(20, 120));
      // A long op (as an undo step: inverted edits, many spread over the text), a short one.
      const inverted = rng.chance(0.5);
      const big = composed(rng, doc, rng.range(5, 60), inverted);
      const step = inverted ? text.invert!(big.op) : big.op;
      const stepDoc = inverted ? big.after : doc;
      if (step.length >= 16) long++;
      const small = composed(rng, stepDoc, rng.range(1, 3)).op;
      for (const side of ['left', 'right'] as const) {
        assert.deepEqual(
          outcome(() => transformText(step, small, side)),
          outcome(() => text.transform(step, small, side)),
          `transform seed ${seed} ${side}: ${JSON.stringify(step)} past ${JSON.stringify(small)}`,
        );
      }
      // compose(short, long): a short edit, then a long op on the document after it.
      const first = edit(rng, doc);
      const second = composed(rng, text.apply(doc, first), rng.range(5, 60)).op;
      assert.deepEqual(
        outcome(() => composeText(first, second)),
        outcome(() => text.compose(first, second)),
        `compose seed ${seed}: ${JSON.stringify(first)} then ${JSON.stringify(second)}`,
      );
    }
    assert.ok(long > CASES / 4, `only ${long} long ops`);
  });

  it('leaves the input ops untouched (merged deletes are new objects)', () => {
    const step: TextOp = [];
    for (let i = 0; i < 20; i++) step.push(2, { d: `x${i}` });
    const before = JSON.stringify(step);
    const other: TextOp = [4, { d: 'x' }];
    transformText(step, other, 'right');
    composeText([5, { d: 'ab' }], step);
    assert.equal(JSON.stringify(step), before);
  });

  it('hands ops not in normalized form to the library', () => {
    const long: TextOp = [];
    for (let i = 0; i < 10; i++) long.push(1, 'a', 'b');
    assert.deepEqual(transformText(long, [3, 'z'], 'left'), text.transform(long, [3, 'z'], 'left'));
  });
});
