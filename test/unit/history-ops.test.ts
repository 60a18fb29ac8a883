/**
 * The undo history's transform and compose (client/history-ops.ts) against json1's own:
 * its fast path for text edits must give exactly json1's result. Seeded random documents
 * and ops from the fuzz generator: history-like steps (several edits composed, inverted
 * ones among them) against text edits at object keys, the shape the history meets on every
 * remote keystroke, and against any other op.
 */
import assert from 'node:assert/strict';
import type { JSONOp, Path } from 'ot-json1';
import { compose, transform } from '../../client/history-ops.js';
import { ops, tandemJson1 } from '../../ot-types/index.js';
import { initialDoc, OpGenerator, Rng, type Json } from '../fuzz/gen-op.js';

const CASES = Number(process.env.HISTORY_OPS_CASES ?? 3000);

/**
 * `op` with its move slots numbered in order of first appearance. A slot number only pairs
 * a pick with its drop: json1 renumbers them when it rebuilds an op (an inverted op has its
 * own order), the fast path keeps the numbers of the op it copies. Everything else is exact.
 */
function slotsRenumbered(op: JSONOp): JSONOp {
  const slots = new Map<number, number>();
  const slot = (n: number) => {
    if (!slots.has(n)) slots.set(n, slots.size);
    return slots.get(n)!;
  };
  const walk = (item: unknown): unknown => {
    if (Array.isArray(item)) return item.map(walk);
    if (typeof item !== 'object' || item === null) return item;
    const component = { ...(item as Record<string, unknown>) };
    if (typeof component.p === 'number') component.p = slot(component.p);
    if (typeof component.d === 'number') component.d = slot(component.d);
    return component;
  };
  return walk(op) as JSONOp;
}

/** The op (slots renumbered), or the fact that computing it threw. */
function outcome(run: () => JSONOp): JSONOp | 'throws' {
  try {
    return slotsRenumbered(run());
  } catch {
    return 'throws';
  }
}

/** Strings reachable through object keys only (where the fast path applies). */
function stringPaths(doc: Json, path: Path = []): Path[] {
  if (typeof doc === 'string') return [path];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [];
  return Object.entries(doc).flatMap(([k, v]) => stringPaths(v, [...path, k]));
}

/** A text edit at an object-key string of `doc`, or null when there is none. */
function textEdit(rng: Rng, doc: Json): JSONOp | null {
  const paths = stringPaths(doc);
  if (paths.length === 0) return null;
  const path = rng.pick(paths);
  const chars = [...((path.reduce<Json>((v, k) => (v as Record<string, Json>)[k as string]!, doc) as string) ?? '')];
  if (chars.length > 0 && rng.chance(0.4)) {
    const at = rng.int(chars.length);
    const removed = chars.slice(at, at + rng.range(1, 3)).join('');
    return ops.textDelete(path, at, rng.chance(0.5) ? removed : [...removed].length);
  }
  return ops.textInsert(path, rng.range(0, chars.length), rng.pick(['a', 'xy', '🦊', ' ']));
}

/** A step as the history holds it: the inverse of a few composed edits, on `doc` after them. */
function historyStep(gen: OpGenerator, doc: Json): { step: JSONOp; forward: JSONOp; after: Json } {
  let after = doc;
  let forward: JSONOp = null;
  const edits = gen.rng.range(1, 6);
  for (let i = 0; i < edits; i++) {
    // Mostly typing at object keys, as people do; the rest anything the generator makes.
    const text = gen.rng.chance(0.6) ? textEdit(gen.rng, after) : null;
    const op = text ?? gen.generate(after).op;
    forward = tandemJson1.compose(forward, op);
    after = tandemJson1.apply(after, op) as Json;
  }
  return { step: tandemJson1.invertWithDoc(forward, doc), forward, after };
}

describe('history-ops: fast text transform and compose equal json1', () => {
  it(`agrees with json1 on ${CASES} seeded cases`, () => {
    let compared = 0;
    for (let seed = 1; seed <= CASES; seed++) {
      const rng = new Rng(seed);
      const gen = new OpGenerator(rng);
      const doc = initialDoc(rng);
      const { step, forward, after } = historyStep(gen, doc);
      // Concurrent with the step: an op on the document the step applies to.
      const remote = (rng.chance(0.8) ? textEdit(rng, after) : null) ?? gen.generate(after).op;
      for (const side of ['left', 'right'] as const) {
        const where = `seed ${seed}, side ${side}, step ${JSON.stringify(step)}, remote ${JSON.stringify(remote)}`;
        assert.deepEqual(
          outcome(() => transform(step, remote, side)),
          outcome(() => tandemJson1.transform(step, remote, side)),
          `transform(step, remote): ${where}`,
        );
        assert.deepEqual(
          outcome(() => transform(remote, step, side)),
          outcome(() => tandemJson1.transform(remote, step, side)),
          `transform(remote, step): ${where}`,
        );
        compared += 2;
      }
      // In sequence: a text edit then a step (record's grouping), and composed edits then one.
      const before = textEdit(rng, doc);
      if (before) {
        const afterEdit = tandemJson1.apply(doc, before) as Json;
        const { step: next } = historyStep(gen, afterEdit);
        assert.deepEqual(
          outcome(() => compose(before, next)),
          outcome(() => tandemJson1.compose(before, next)),
          `compose(edit, step): seed ${seed}`,
        );
        compared++;
      }
      const then = textEdit(rng, after);
      if (then) {
        assert.deepEqual(
          outcome(() => compose(forward, then)),
          outcome(() => tandemJson1.compose(forward, then)),
          `compose(step, edit): seed ${seed}`,
        );
        compared++;
      }
    }
    assert.ok(compared > CASES * 4);
  });

  it('takes the fast path for typing against a grouped step (nothing else on the way down)', () => {
    const step: JSONOp = [
      ['items', [0, { r: true }], [2, 'n', { ena: -1 }]],
      ['props', 'k1', { r: true, i: 5 }],
      ['text', { es: [2, { d: 'ab' }, 5, { d: 'c' }] }],
    ];
    const typed: JSONOp = ['text', { es: [4, 'x'] }];
    const moved = transform(step, typed, 'right');
    assert.deepEqual(moved, tandemJson1.transform(step, typed, 'right'));
    // Only the text edit changed: the other branches are the step's own (not rebuilt).
    assert.equal((moved as JSONOp[])[0], (step as JSONOp[])[0]);
    assert.deepEqual(transform(typed, step, 'left'), tandemJson1.transform(typed, step, 'left'));
    const inverse: JSONOp = ['text', { es: [9, { d: 'y' }] }];
    assert.deepEqual(compose(inverse, step), tandemJson1.compose(inverse, step));
  });

  it('leaves to json1 what it prunes or restructures', () => {
    // The same character deleted by both: the step's edit becomes a no-op, which json1 prunes.
    const step: JSONOp = [
      ['props', 'k1', { r: true, i: 5 }],
      ['text', { es: [3, { d: 'q' }] }],
    ];
    const remote: JSONOp = ['text', { es: [3, { d: 'q' }] }];
    assert.deepEqual(transform(step, remote, 'right'), tandemJson1.transform(step, remote, 'right'));
    assert.deepEqual(transform(step, remote, 'right'), ['props', 'k1', { r: true, i: 5 }]);
    // A step that removes the string: json1 decides.
    const removing: JSONOp = ['text', { r: 'abcq' }];
    assert.deepEqual(transform(removing, remote, 'right'), tandemJson1.transform(removing, remote, 'right'));
    assert.deepEqual(transform(remote, removing, 'left'), tandemJson1.transform(remote, removing, 'left'));
  });
});
