/**
 * The O(op) text apply (ot-types/text-positions.ts) against ot-text-unicode's own apply:
 * - seeded fuzz of text ops on strings with and without surrogates, below and above the
 *   memo's threshold, including ops ot-text-unicode refuses or that run past the end: the
 *   same result, or the same error;
 * - chains of 2,000 json1 ops on a 60 KB string through tandemJson1 (which uses the fast
 *   apply once json1-type.ts is loaded), one gaining a surrogate pair midway, one losing its
 *   last pair, compared with json1 running the original text type;
 * - the memo's bounds, and that it lets go of a string an op has replaced;
 * - opSizeDelta of text edits on such strings equals re-encoding (test/resilience/
 *   documents.test.ts covers it on short strings in random json1 ops).
 * The piece tables, buckets and lineages: test/unit/text-pieces.test.ts; what edits cost,
 * printed by `npm run bench:text` (load/bench-text.ts).
 */
import assert from 'node:assert/strict';
import * as json1 from 'ot-json1';
import * as textUnicode from 'ot-text-unicode';
import type { TextOp } from 'ot-text-unicode';
import { tandemJson1, type JSONOp, type JsonValue } from '../../ot-types/index.js';
import {
  applyTextOp,
  countCodePoints,
  DEFAULT_MEMO_LIMITS,
  fastTextUnicode,
  isSurrogateFree,
  SurrogateMemo,
  surrogateMemo,
} from '../../ot-types/text-positions.js';
import { jsonBytes, OpDoesNotApply, opSizeDelta } from '../../server/limits/doc-size.js';
import { Rng } from '../fuzz/rng.js';

const original = textUnicode.type;
const HAS_SURROGATE = /[\uD800-\uDFFF]/;
const BMP = ['a', 'b', 'c', ' ', '\n', 'é', '中', 'ж', '"', '\\'];
const ASTRAL = ['😀', '🦊', '𝄞', '👍🏽'];
const LONE = ['\uD800', '\uDC00', '\uDBFF'];

type Kind = 'free' | 'pairs' | 'lone';
type Outcome = { value: unknown } | { error: string };

function outcome(run: () => unknown): Outcome {
  try {
    return { value: run() };
  } catch (err) {
    return { error: err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err) };
  }
}

function randomText(rng: Rng, units: number, kind: Kind): string {
  const parts: string[] = [];
  let length = 0;
  while (length < units) {
    const roll = rng.next();
    const piece = kind === 'lone' && roll < 0.01 ? rng.pick(LONE) : kind !== 'free' && roll < 0.03 ? rng.pick(ASTRAL) : rng.pick(BMP);
    parts.push(piece);
    length += piece.length;
  }
  const text = parts.join('');
  // A string of kind 'pairs' or 'lone' must have at least one surrogate somewhere.
  if (kind === 'free' || HAS_SURROGATE.test(text)) return text;
  const at = rng.int(text.length + 1);
  return text.slice(0, at) + (kind === 'lone' ? rng.pick(LONE) : rng.pick(ASTRAL)) + text.slice(at);
}

function randomInsert(rng: Rng, astralChance: number): string {
  let s = '';
  for (let n = rng.range(1, 6); n > 0; n--) s += rng.chance(astralChance) ? rng.pick(ASTRAL) : rng.pick(BMP);
  return s;
}

/** Components ot-text-unicode refuses, or takes in ways an ordinary op never shows. */
const ODD_COMPONENTS: readonly unknown[] = [
  0,
  -1,
  Number.NaN,
  1.5,
  '',
  { d: 0 },
  { d: '' },
  { d: 2.5 },
  { d: Number.NaN },
  { d: true },
  null,
  true,
  undefined,
  [1],
];

/** A random text-unicode op for a string of about `units` UTF-16 units; may run past its end. */
function randomTextOp(rng: Rng, units: number, astralChance: number, oddChance = 0.03): unknown[] {
  const op: unknown[] = [];
  let pos = 0;
  // Sometimes right up to the end of the string, or a little past it.
  const count = (upTo: number): number =>
    rng.chance(0.12) ? Math.max(1, units - pos + rng.range(-2, 8)) : rng.range(1, Math.max(1, upTo));
  for (let n = rng.range(1, 4); n > 0; n--) {
    const roll = rng.next();
    if (roll < oddChance) {
      op.push(rng.pick(ODD_COMPONENTS));
    } else if (roll < 0.4 && typeof op[op.length - 1] !== 'number') {
      const skip = count(units - pos);
      op.push(skip);
      pos += skip;
    } else if (roll < 0.7) {
      op.push(randomInsert(rng, astralChance));
    } else {
      const n = count(8);
      op.push({ d: rng.chance(0.5) ? n : randomInsert(rng, astralChance).repeat(Math.ceil(n / 4)) });
      pos += n;
    }
  }
  if (typeof op[op.length - 1] === 'number' && rng.chance(0.9)) op.pop();
  return op;
}

/** A length below, at or above the memo's threshold (1,024 units). */
function randomLength(rng: Rng): number {
  const min = DEFAULT_MEMO_LIMITS.minLength;
  switch (rng.int(3)) {
    case 0:
      return rng.int(80);
    case 1:
      return rng.range(min - 20, min + 20);
    default:
      return rng.range(min, 6 * min);
  }
}

/** UTF-16 index of code point `cp` of `text`, as ot-text-unicode counts code points. */
function unitIndex(text: string, cp: number): number {
  if (!HAS_SURROGATE.test(text)) return cp;
  let at = 0;
  for (let k = 0; k < cp; k++) at += HAS_SURROGATE.test(text[at] ?? '') ? 2 : 1;
  return at;
}

/** Runs `fn` with json1 applying text edits with ot-text-unicode's own apply. */
function withOriginalTextType<T>(fn: () => T): T {
  json1.type.registerSubtype(original);
  try {
    return fn();
  } finally {
    json1.type.registerSubtype(fastTextUnicode);
  }
}

interface ChainDoc {
  text: string;
  items: JsonValue[];
}

describe('text-positions: the fast text-unicode apply and its surrogate memo', () => {
  it('is ot-text-unicode with only apply replaced, registered with json1', () => {
    assert.equal(fastTextUnicode.name, original.name);
    assert.equal(fastTextUnicode.uri, original.uri);
    assert.deepEqual(Object.keys(fastTextUnicode).sort(), Object.keys(original).sort());
    for (const key of Object.keys(original) as Array<keyof typeof original>) {
      if (key !== 'apply') assert.equal(fastTextUnicode[key], original[key], key);
    }
    assert.equal(fastTextUnicode.apply, applyTextOp);
    // Ops are unchanged on the wire: json1 still writes text edits as `es`.
    assert.deepEqual(json1.editOp(['t'], 'text-unicode', [1, 'x']), ['t', { es: [1, 'x'] }]);
    const text = 'q'.repeat(3000);
    const after = tandemJson1.apply({ t: text }, ['t', { es: [1500, 'x'] }]) as { t: string };
    assert.ok(surrogateMemo.holds(after.t), 'json1 applied the edit with the fast apply');
    const byUri = json1.type.apply({ t: text }, ['t', { et: original.uri, e: [2, 'y'] }] as JSONOp) as { t: string };
    assert.ok(surrogateMemo.holds(byUri.t), 'also when the edit names the type by URI');
  });

  it('returns what ot-text-unicode returns, or throws what it throws, on random ops (seeded)', () => {
    const rng = new Rng(20240611);
    const counts = { fast: 0, fastTooLong: 0, errors: 0, surrogates: 0, short: 0, nonString: 0 };
    let current: unknown = '';
    for (let k = 0; k < 10_000; k++) {
      const roll = rng.next();
      if (roll < 0.02) current = rng.pick<unknown>([undefined, null, 42, ['abc'], { d: 1 }]);
      else if (roll < 0.6 || typeof current !== 'string')
        current = randomText(rng, randomLength(rng), rng.pick<Kind>(['free', 'free', 'pairs', 'lone']));
      const str = current;
      const op = randomTextOp(rng, typeof str === 'string' ? str.length : 5, rng.pick([0, 0, 0.2]));
      // Sometimes the memo already knows the string, sometimes the op is its first sight of it.
      if (typeof str === 'string' && rng.chance(0.3)) isSurrogateFree(str);
      const expected = outcome(() => original.apply(str as string, op as TextOp));
      const actual = outcome(() => applyTextOp(str as string, op as TextOp));
      assert.deepEqual(actual, expected, `case ${k}: op ${JSON.stringify(op)} on ${String(JSON.stringify(str)).slice(0, 200)}`);
      if ('error' in expected) counts.errors++;
      if (typeof str !== 'string') counts.nonString++;
      else if (str.length < DEFAULT_MEMO_LIMITS.minLength) counts.short++;
      else if (HAS_SURROGATE.test(str)) counts.surrogates++;
      else if ('value' in expected) counts.fast++;
      else if (expected.error === 'Error: The op is too long for this document') counts.fastTooLong++;
      // Half the time the next op applies to this result: the memo's record of it is what
      // decides the next apply's path, so a wrong record shows up as a wrong next result.
      if ('value' in actual && rng.chance(0.5)) current = actual.value;
      if ('value' in actual && typeof actual.value === 'string') {
        const known = surrogateMemo.holds(actual.value);
        if (known) assert.equal(isSurrogateFree(actual.value), !HAS_SURROGATE.test(actual.value), `case ${k}: memo record`);
      }
    }
    for (const [name, n] of Object.entries(counts)) assert.ok(n > 50, `${name}: ${n} cases`);
  });

  it('agrees with it on the edges: the end of the string, fractions, NaN, ignored components', () => {
    const str = 'e'.repeat(3000);
    const edges: unknown[][] = [
      [3000, 'x'],
      [3001, 'x'],
      [2999, { d: 1 }, 'x'],
      [2999, { d: 2 }, 'x'],
      [2999, { d: 2 }, 1, 'x'],
      [{ d: 1e7 }, 'x'],
      [{ d: 3000 }, 'x', 1],
      [1.5, 'x'],
      [2999.5, 'x'],
      [{ d: 2.5 }, 'x'],
      [{ d: Number.NaN }, 'x'],
      [true, 3, 'x'],
      [3, undefined, 4, 'x'],
      [3, false, 4],
      [3, 'x', 4],
      [{ d: 'ab😀' }, 'y'],
      [{ d: 'a\uD800' }],
      [2, '😀', { d: 1 }, 5, '\uDC00'],
      [],
    ];
    for (const op of edges) {
      isSurrogateFree(str);
      const expected = outcome(() => original.apply(str, op as TextOp));
      assert.deepEqual(
        outcome(() => applyTextOp(str, op as TextOp)),
        expected,
        JSON.stringify(op),
      );
    }
  });

  describe('chains of 2,000 json1 ops on a 60 KB string', function () {
    // Each step also applies the op with the original, O(length) text type, for reference.
    this.timeout(120_000);
    const STEPS = 2000;
    const CHECKPOINT = 250;
    // Long enough for the fast path and for a layout of many blocks (~15); the reference apply
    // is O(length) per step, so longer only costs CI time.
    const CHARS = 60_000;

    function randomChainOp(rng: Rng, doc: ChainDoc, astralChance: number): JSONOp {
      const cpLength = isSurrogateFree(doc.text) ? doc.text.length : countCodePoints(doc.text);
      const roll = rng.next();
      if (roll < 0.1) return json1.insertOp(['items', rng.int(doc.items.length + 1)], { n: rng.int(1000) });
      if (roll < 0.55)
        return json1.editOp(['text'], 'text-unicode', textUnicode.insert(rng.int(cpLength + 1), randomInsert(rng, astralChance)));
      const at = rng.int(cpLength);
      const n = Math.min(rng.range(1, 20), cpLength - at);
      if (roll < 0.75) return json1.editOp(['text'], 'text-unicode', textUnicode.remove(at, n));
      if (roll < 0.9) {
        const start = unitIndex(doc.text, at);
        const deleted = doc.text.slice(start, unitIndex(doc.text.slice(start), n) + start);
        return json1.editOp(['text'], 'text-unicode', textUnicode.remove(at, deleted));
      }
      // Several edits in one op, with a list insert beside them.
      const textOp = original.compose(
        textUnicode.remove(at, n),
        textUnicode.insert(rng.int(cpLength - n + 1), randomInsert(rng, astralChance)),
      );
      return json1.type.compose(json1.editOp(['text'], 'text-unicode', textOp), json1.insertOp(['items', 0], 'first'));
    }

    /**
     * Applies `STEPS` ops through tandemJson1 and json1 with the original text type side by
     * side; `at(step, doc)` may return an op of its own for that step.
     */
    function runChain(seed: number, text: string, astralChance: number, at: (step: number, doc: ChainDoc) => JSONOp | undefined): ChainDoc {
      const rng = new Rng(seed);
      let doc: ChainDoc = { text, items: [] };
      let reference: ChainDoc = doc;
      for (let step = 1; step <= STEPS; step++) {
        const op = at(step, doc) ?? randomChainOp(rng, doc, astralChance);
        const input = doc.text;
        doc = tandemJson1.apply(doc as unknown as JsonValue, op) as unknown as ChainDoc;
        reference = withOriginalTextType(() => tandemJson1.apply(reference as unknown as JsonValue, op) as unknown as ChainDoc);
        if (doc.text !== input) {
          assert.ok(!surrogateMemo.holds(input), `step ${step}: the replaced text is forgotten`);
          // Recorded only when the fast apply made it: then the memo's answer is exact.
          assert.equal(
            surrogateMemo.holds(doc.text),
            !HAS_SURROGATE.test(input),
            `step ${step}: the result is recorded iff the fast path ran`,
          );
        }
        if (step % CHECKPOINT === 0 || step === STEPS) {
          assert.equal(doc.text, reference.text, `step ${step}: text`);
          assert.deepEqual(doc.items, reference.items, `step ${step}: items`);
          assert.equal(isSurrogateFree(doc.text), !HAS_SURROGATE.test(doc.text), `step ${step}: memo`);
        }
      }
      return doc;
    }

    it('stays exact on surrogate-free text, each result recorded as free', () => {
      const rng = new Rng(7);
      const doc = runChain(71, randomText(rng, CHARS, 'free'), 0, () => undefined);
      assert.ok(doc.text.length > 0.75 * CHARS && doc.items.length > 50);
      assert.ok(surrogateMemo.holds(doc.text) && isSurrogateFree(doc.text));
    });

    it('stays exact when an insert brings in a surrogate pair midway (then the memo says not free)', () => {
      const rng = new Rng(8);
      let sawPair = false;
      const doc = runChain(81, randomText(rng, CHARS, 'free'), 0, (step, current) => {
        if (step === STEPS / 2) {
          const op = json1.editOp(['text'], 'text-unicode', textUnicode.insert(CHARS / 2, 'x😀y'));
          assert.equal(isSurrogateFree(current.text), true);
          return op;
        }
        if (step === STEPS / 2 + 1) {
          assert.equal(isSurrogateFree(current.text), false, 'the memo learnt it from the insert');
          sawPair = true;
        }
        return undefined;
      });
      assert.ok(sawPair && doc.text.includes('😀'));
      assert.equal(isSurrogateFree(doc.text), false);
    });

    it('stays exact when a delete removes the last pair (then the fast path is back)', () => {
      const rng = new Rng(9);
      const base = randomText(rng, CHARS, 'free');
      const text = base.slice(0, CHARS / 4) + '🦊' + base.slice(CHARS / 4, (3 * CHARS) / 4) + '𝄞' + base.slice((3 * CHARS) / 4);
      const pairsLeft = (doc: ChainDoc): number => (doc.text.match(/[\uD800-\uDBFF]/g) ?? []).length;
      let fastAgainAt = 0;
      const doc = runChain(91, text, 0, (step, current) => {
        // Deletes each pair where it now is, one by count and the other by its text.
        if (step === 600 || step === 1200) {
          const unit = current.text.search(/[\uD800-\uDBFF]/);
          const cp = countCodePoints(current.text.slice(0, unit));
          return json1.editOp(['text'], 'text-unicode', textUnicode.remove(cp, step === 600 ? 1 : current.text.slice(unit, unit + 2)));
        }
        if (step === 601) assert.equal(pairsLeft(current), 1);
        if (step === 1201) {
          assert.equal(pairsLeft(current), 0);
          assert.equal(isSurrogateFree(current.text), true, 'a fresh scan finds it free');
        }
        if (step === 1202) fastAgainAt = surrogateMemo.holds(current.text) ? step : 0;
        return undefined;
      });
      assert.equal(fastAgainAt, 1202, 'the op after the scan took the fast path');
      assert.equal(isSurrogateFree(doc.text), true);
    });
  });

  describe('the memo', () => {
    it('stays within its entry and character bounds, evicting the least recently used', () => {
      const memo = new SurrogateMemo({ ...DEFAULT_MEMO_LIMITS, minLength: 4, maxEntries: 8, maxChars: 100 });
      memo.isSurrogateFree('abcd');
      for (let length = 5; length < 60; length++) {
        memo.isSurrogateFree('x'.repeat(length));
        memo.isSurrogateFree('abcd'); // kept fresh: never the one evicted
        assert.ok(memo.size <= 8 && memo.chars <= 100, `after ${length}: ${memo.size} entries, ${memo.chars} chars`);
      }
      assert.ok(memo.holds('abcd'));
      assert.ok(!memo.holds('x'.repeat(5)));
      memo.isSurrogateFree('y'.repeat(101));
      assert.ok(!memo.holds('y'.repeat(101)), 'a string over the whole budget is not kept');
      assert.ok(!memo.holds('abc') && memo.isSurrogateFree('abc'), 'short strings are scanned, not kept');
    });

    it('keeps at most 1,024 strings and 64 M characters by default', () => {
      const { minLength, maxEntries, maxChars } = DEFAULT_MEMO_LIMITS;
      const memo = new SurrogateMemo();
      for (let k = 0; k < maxEntries + 200; k++) memo.isSurrogateFree('m'.repeat(minLength + k));
      assert.equal(memo.size, maxEntries);
      const big = 1 << 20;
      for (let k = 0; k < 70; k++) memo.isSurrogateFree('b'.repeat(big + k));
      assert.ok(memo.chars <= maxChars, `${memo.chars} characters held`);
      assert.ok(memo.holds('b'.repeat(big + 69)) && !memo.holds('b'.repeat(big)));
    });

    it('forgets the input of an apply and records its result', () => {
      const input = 'f'.repeat(5000);
      assert.equal(isSurrogateFree(input), true);
      assert.ok(surrogateMemo.holds(input));
      const longer = applyTextOp(input, [10, 'y']);
      assert.ok(!surrogateMemo.holds(input) && surrogateMemo.holds(longer));
      const same = applyTextOp(longer, [3, 'z', { d: 1 }]);
      assert.equal(same.length, longer.length);
      assert.ok(!surrogateMemo.holds(longer) && surrogateMemo.holds(same));
      const withPair = applyTextOp(same, [7, '😀']);
      assert.ok(surrogateMemo.holds(withPair) && !isSurrogateFree(withPair));
      // The original apply ran: nothing recorded (a delete may have removed the last pair).
      const slow = applyTextOp(withPair, [1, 'w']);
      assert.ok(!surrogateMemo.holds(withPair) && !surrogateMemo.holds(slow));
      assert.throws(() => applyTextOp(slow, [9000, 'w']), /The op is too long for this document/);
      assert.equal(isSurrogateFree(slow), false);
      assert.throws(() => applyTextOp(same, [9000, 'w']), /The op is too long for this document/);
      assert.ok(surrogateMemo.holds(same), 'a failed apply forgets nothing');
    });
  });

  describe('opSizeDelta of text edits', () => {
    /** Walks a generated op as doc-size does: a skip or delete past the end does not apply. */
    function runsPastEnd(text: string, op: TextOp): boolean {
      const length = countCodePoints(text);
      let at = 0;
      for (const c of op) {
        if (typeof c === 'number') at += c;
        else if (typeof c === 'object') at += typeof c.d === 'number' ? c.d : countCodePoints(c.d);
        if (at > length) return true;
      }
      return false;
    }

    it('equals re-encoding on surrogate-free and surrogate strings, short and long (seeded)', () => {
      const rng = new Rng(4242);
      const counts = { free: 0, pairs: 0, refused: 0 };
      let text = '';
      for (let k = 0; k < 3000; k++) {
        if (k % 4 === 0) text = randomText(rng, randomLength(rng), rng.pick<Kind>(['free', 'pairs']));
        let textOp: TextOp;
        do textOp = randomTextOp(rng, text.length, rng.pick([0, 0.2]), 0) as TextOp;
        while ('error' in outcome(() => original.checkOp(textOp)) || textOp.length === 0);
        const doc = { text, other: ['x'] };
        const op = ['text', { es: textOp }] as JSONOp;
        if (rng.chance(0.5)) isSurrogateFree(text);
        if (runsPastEnd(text, textOp)) {
          assert.throws(() => opSizeDelta(doc, op), OpDoesNotApply, `case ${k}: ${JSON.stringify(textOp)}`);
          counts.refused++;
          continue;
        }
        const after = tandemJson1.apply(doc, op) as typeof doc;
        assert.equal(
          opSizeDelta(doc, op),
          jsonBytes(after) - jsonBytes(doc),
          `case ${k}: ${JSON.stringify(textOp)} on ${JSON.stringify(text).slice(0, 200)}`,
        );
        counts[HAS_SURROGATE.test(text) ? 'pairs' : 'free']++;
        if (rng.chance(0.6)) text = after.text;
      }
      for (const [name, n] of Object.entries(counts)) assert.ok(n > 100, `${name}: ${n} cases`);
    });
  });
});
