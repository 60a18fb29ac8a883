/**
 * The piece tables behind the fast text apply (ot-types/text-layout.ts) and the memo's
 * buckets and lineages (ot-types/surrogate-memo.ts):
 * - seeded chains of thousands of ops on a memo with tiny blocks and a cap of 3 pieces, so
 *   that every op splits, merges or flattens blocks: each result equal to ot-text-unicode's,
 *   each layout well formed, sliceText equal to String.prototype.slice;
 * - documents of equal length kept side by side, and found by their lineage when keyed;
 * - checkOpAgainst on long texts, and opSizeDelta with a document key, against references.
 * test/unit/text-positions.test.ts covers the apply on its own (odd ops, surrogates, bounds).
 */
import assert from 'node:assert/strict';
import * as json1 from 'ot-json1';
import * as textUnicode from 'ot-text-unicode';
import type { TextOp } from 'ot-text-unicode';
import { checkOpAgainst } from '../../ot-types/check-op.js';
import { tandemJson1, type JSONOp, type JsonValue } from '../../ot-types/index.js';
import { blockChars } from '../../ot-types/text-layout.js';
import { applyTextOp, DEFAULT_MEMO_LIMITS, SurrogateMemo, sliceText, surrogateMemo, trialApply } from '../../ot-types/text-positions.js';
import { jsonBytes, opSizeDelta } from '../../server/limits/doc-size.js';
import { Rng } from '../fuzz/rng.js';

const original = textUnicode.type;
const WORDS = ['lorem ', 'ipsum ', 'dolor ', 'é', '中', '\n', '"', '\\'];

function freeText(rng: Rng, units: number): string {
  let text = '';
  while (text.length < units) text += rng.pick(WORDS);
  return text.slice(0, units);
}

type Outcome = { value: unknown } | { error: string };

function outcome(run: () => unknown): Outcome {
  try {
    return { value: run() };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** A valid-looking text op on a `length`-unit string: small edits, big inserts, long deletes, past the end at times. */
function randomOp(rng: Rng, length: number, astralChance: number): TextOp {
  const op: TextOp = [];
  let at = 0;
  for (let n = rng.range(1, 4); n > 0; n--) {
    const skip = rng.chance(0.05) ? length - at + rng.range(-1, 3) : rng.int(Math.max(1, (length - at) >> 1));
    if (skip > 0) op.push(skip);
    at += Math.max(skip, 0);
    const roll = rng.next();
    if (roll < 0.45) op.push(rng.chance(astralChance) ? 'a😀b' : rng.chance(0.1) ? freeText(rng, rng.range(50, 400)) : rng.pick(WORDS));
    else {
      const n = rng.chance(0.15) ? rng.range(20, 300) : rng.range(1, 4);
      op.push({ d: n });
      at += n;
    }
  }
  return op;
}

/** Asserts that the memo knows `text` as surrogate-free, with well-formed pieces that make it up. */
function checkLayout(memo: SurrogateMemo, text: string): void {
  const entry = memo.find(text);
  assert.ok(entry?.surrogateFree, 'the result is recorded as surrogate-free');
  const layout = memo.layout(entry);
  let length = 0;
  for (const block of layout.blocks) {
    assert.ok(block.pieces.length >= 1 && block.pieces.length <= memo.limits.maxPieces, `${block.pieces.length} pieces`);
    assert.ok(
      block.pieces.every((piece) => piece.length > 0),
      'no empty piece',
    );
    assert.equal(
      block.pieces.reduce((sum, piece) => sum + piece.length, 0),
      block.length,
    );
    length += block.length;
  }
  assert.equal(layout.length, text.length);
  assert.equal(length, text.length);
  assert.equal(layout.blocks.map((b) => b.pieces.join('')).join(''), text);
}

describe('text pieces: the layouts, buckets and lineages behind the fast text apply', () => {
  it('stays exact over long chains with tiny blocks and a cap of 3 pieces (seeded)', function () {
    this.timeout(60_000);
    const memo = new SurrogateMemo({
      ...DEFAULT_MEMO_LIMITS,
      minLength: 16,
      maxPerLength: 4,
      maxPieces: 3,
      minBlockChars: 4,
      blockScale: 0.5,
    });
    const rng = new Rng(5150);
    const counts = { fast: 0, slow: 0, errors: 0, maxBlocks: 0, slices: 0 };
    let text = freeText(rng, 2000);
    for (let step = 0; step < 6000; step++) {
      if (rng.chance(0.002) || text.length < 16) text = freeText(rng, rng.range(16, 4000));
      const op = randomOp(rng, text.length, 0.005);
      const fast = memo.isSurrogateFree(text);
      const expected = outcome(() => original.apply(text, op));
      const actual = outcome(() => applyTextOp(text, op, memo));
      assert.deepEqual(actual, expected, `step ${step}: ${JSON.stringify(op)}`);
      if (!('value' in actual)) {
        counts.errors++;
        continue;
      }
      counts[fast ? 'fast' : 'slow']++;
      text = actual.value as string;
      if (/[\uD800-\uDFFF]/.test(text)) {
        // The original apply runs on it next, or it is made surrogate-free and scanned afresh.
        if (rng.chance(0.5)) text = text.replace(/[\uD800-\uDFFF]/g, 'q');
        continue;
      }
      if (fast && text.length >= memo.limits.minLength) {
        checkLayout(memo, text);
        counts.maxBlocks = Math.max(counts.maxBlocks, memo.layout(memo.find(text)!).blocks.length);
      }
      for (let k = 0; k < 3; k++) {
        const a = rng.int(text.length + 1);
        const b = a + rng.int(text.length - a + 1);
        assert.equal(sliceText(text, a, b, memo), text.slice(a, b), `step ${step}: slice ${a}–${b}`);
        counts.slices++;
      }
    }
    assert.ok(counts.fast > 4000 && counts.slow > 10 && counts.errors > 50, JSON.stringify(counts));
    assert.ok(counts.maxBlocks > 20, `up to ${counts.maxBlocks} blocks`);
  });

  it('builds blocks near max(minBlockChars, blockScale × √length) units', () => {
    const memo = new SurrogateMemo();
    const text = freeText(new Rng(3), 1 << 20);
    assert.equal(memo.isSurrogateFree(text), true);
    const layout = memo.layout(memo.find(text)!);
    const target = blockChars(text.length, memo.limits);
    assert.equal(target, 16 * 1024);
    assert.equal(layout.blocks.length, 64);
    assert.ok(layout.blocks.every((b) => b.pieces.length === 1 && b.length === target));
    assert.equal(blockChars(3000, memo.limits), 1024);
  });

  it('slices like String.prototype.slice for any arguments, memoised or not', () => {
    const memo = new SurrogateMemo({ ...DEFAULT_MEMO_LIMITS, minLength: 16, minBlockChars: 4, blockScale: 0.5 });
    const free = freeText(new Rng(4), 500);
    const edited = applyTextOp(free, [100, 'xyz', { d: 7 }, 200, 'w'], memo);
    const withPair = `${free}😀`;
    memo.isSurrogateFree(withPair);
    const args = [0, 1, 17, 250, 499, 500, 501, 1e9, -1, -30, 2.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    for (const text of [edited, withPair, free, 'short']) {
      for (const a of args) {
        for (const b of args) assert.equal(sliceText(text, a, b, memo), text.slice(a, b), `${a}, ${b}`);
      }
    }
  });

  describe('the memo with equal lengths', () => {
    it('keeps up to maxPerLength strings of one length, evicting the least recently used of them', () => {
      const memo = new SurrogateMemo({ ...DEFAULT_MEMO_LIMITS, minLength: 4, maxPerLength: 3 });
      const texts = ['aaaa1', 'aaaa2', 'aaaa3', 'aaaa4'];
      for (const text of texts.slice(0, 3)) memo.isSurrogateFree(text);
      assert.ok(texts.slice(0, 3).every((t) => memo.holds(t)));
      memo.isSurrogateFree('aaaa1');
      memo.isSurrogateFree('aaaa4');
      assert.deepEqual(
        texts.map((t) => memo.holds(t)),
        [true, false, true, true],
      );
      assert.equal(memo.size, 3);
      memo.isSurrogateFree('bbbbbb');
      assert.equal(memo.size, 4, 'another length has its own bucket');
    });

    it('keeps the texts of 16 documents of equal length as they take turns', () => {
      const memo = new SurrogateMemo();
      const rng = new Rng(16);
      const base = freeText(rng, 5000);
      const docs = Array.from({ length: 16 }, (_, k) => `${k}`.padStart(2, '0') + base.slice(2));
      for (let round = 0; round < 20; round++) {
        for (let k = 0; k < docs.length; k++) {
          const at = rng.int(docs[k].length + 1);
          const result = applyTextOp(docs[k], textUnicode.insert(at, 'x'), memo);
          assert.equal(result, original.apply(docs[k], textUnicode.insert(at, 'x')));
          docs[k] = result;
        }
        assert.ok(
          docs.every((d) => memo.holds(d)),
          `round ${round}: every document's text is kept`,
        );
      }
      assert.equal(memo.size, 16);
    });

    it('follows a keyed text from apply to apply, and still answers right for another string at that key', () => {
      const memo = new SurrogateMemo();
      const text = freeText(new Rng(5), 3000);
      assert.equal(memo.isSurrogateFree(text, 'doc\u0000["t"]'), true);
      const next = applyTextOp(text, [10, 'y'], memo);
      assert.equal(memo.entryAt('doc\u0000["t"]', next), memo.find(next), 'the lineage holds the result');
      assert.ok(!memo.holds(text));
      const withPair = `${next.slice(0, 100)}😀${next.slice(102)}`;
      assert.equal(withPair.length, next.length);
      assert.equal(memo.isSurrogateFree(withPair, 'doc\u0000["t"]'), false, 'another string at the key');
      assert.equal(memo.isSurrogateFree(next, 'doc\u0000["t"]'), true);
      const third = applyTextOp(next, [{ d: 3 }], memo);
      assert.equal(memo.isSurrogateFree(third, 'doc\u0000["t"]'), true);
      assert.ok(memo.holds(third));
    });
  });

  describe('checkOpAgainst on long texts', () => {
    /** The check as it was before it used the memo: the text split into code points. */
    function reference(text: string, textOp: unknown[]): string | null {
      const chars = [...text];
      let at = 0;
      for (const part of textOp) {
        if (typeof part === 'number') at += part;
        else if (typeof part === 'object' && part !== null && 'd' in part) {
          const d = (part as { d: unknown }).d;
          const length = typeof d === 'string' ? [...d].length : typeof d === 'number' ? d : 0;
          if (at + length > chars.length) return `deletes ${length} characters at ${at} but the text has ${chars.length}`;
          if (typeof d === 'string') {
            const actual = chars.slice(at, at + length).join('');
            if (actual !== d) return `deletes ${JSON.stringify(d)} at ${at} but the text there is ${JSON.stringify(actual)}`;
          }
          at += length;
        }
      }
      return null;
    }

    it('gives the same answers as splitting the text into code points (seeded)', () => {
      const rng = new Rng(77);
      const seen = { matches: 0, mismatches: 0, pastEnd: 0 };
      let text = freeText(rng, 3000);
      for (let k = 0; k < 1500; k++) {
        if (k % 50 === 0) text = freeText(rng, rng.range(900, 5000)) + (rng.chance(0.3) ? '😀' : '');
        const cps = [...text];
        const at = rng.chance(0.15) ? cps.length - rng.int(20) : rng.int(cps.length);
        const n = rng.range(1, 30);
        const exact = cps.slice(at, at + n).join('');
        const d = rng.chance(0.3) ? n : rng.chance(0.5) ? exact : `${exact.slice(0, -1)}#`;
        const textOp: unknown[] = [...(at > 0 ? [at] : []), { d }, ...(rng.chance(0.3) ? [2, { d: 1.5 }] : [])];
        const doc = { t: text } as JsonValue;
        // Sometimes the text is an apply's result (then its pieces are used), sometimes not.
        if (rng.chance(0.5) && !text.includes('😀')) {
          const edit = json1.editOp(['t'], 'text-unicode', [rng.int(text.length) + 1, 'k']);
          text = (tandemJson1.apply(doc, edit) as { t: string }).t;
          continue;
        }
        const got = checkOpAgainst(doc, ['t', { es: textOp }] as JSONOp);
        const want = reference(text, textOp);
        assert.equal(got?.reason ?? null, want, `case ${k}: ${JSON.stringify(textOp)}`);
        if (want === null) seen.matches++;
        else if (want.includes('but the text has')) seen.pastEnd++;
        else seen.mismatches++;
      }
      for (const [name, n] of Object.entries(seen)) assert.ok(n > 30, `${name}: ${n}`);
    });
  });

  it('opSizeDelta with a document key equals re-encoding, ten documents of equal length in shuffled turns', () => {
    const rng = new Rng(10);
    const base = freeText(rng, 20_000);
    const docs: JsonValue[] = Array.from({ length: 10 }, () => ({ text: (' ' + base).slice(1), n: 1 }));
    let order: number[] = [];
    for (let step = 0; step < 1500; step++) {
      if (order.length === 0) order = [...docs.keys()].sort(() => rng.next() - 0.5);
      const k = order.pop()!;
      const text = (docs[k] as { text: string }).text;
      const at = rng.int(text.length - 40);
      const textOp = rng.chance(0.5)
        ? textUnicode.insert(at, rng.pick(WORDS))
        : textUnicode.remove(at, rng.chance(0.5) ? 17 : text.slice(at, at + 9));
      const op = json1.editOp(['text'], 'text-unicode', textOp);
      const keyed = opSizeDelta(docs[k], op, `docs/${k}`);
      const after = tandemJson1.apply(docs[k], op) as JsonValue;
      assert.equal(keyed, jsonBytes(after) - jsonBytes(docs[k]), `step ${step}`);
      assert.equal((after as { text: string }).text, original.apply(text, textOp));
      docs[k] = after;
    }
  });
});

describe('trialApply', () => {
  it('applies exactly, and leaves the memo able to find the input for the real apply', () => {
    let doc = { text: 'abcdefgh'.repeat(4096) };
    doc = tandemJson1.apply(doc as never, ['text', { es: [5, 'x'] }] as never) as unknown as typeof doc;
    const op = ['text', { es: [100, 'yz', { d: 3 }] }];
    const tried = trialApply(() => tandemJson1.apply(doc as never, op as never)) as unknown as typeof doc;
    const expected = textUnicode.type.apply(doc.text, [100, 'yz', { d: 3 }]);
    assert.equal(tried.text, expected);
    assert.ok(surrogateMemo.holds(doc.text), 'the input is still known after a trial apply');
    const real = tandemJson1.apply(doc as never, op as never) as unknown as typeof doc;
    assert.equal(real.text, expected);
    assert.ok(!surrogateMemo.holds(doc.text), 'a real apply forgets its input');
  });
});
