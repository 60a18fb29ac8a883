/**
 * Pure (no network) seeded fuzz of tandemJson1's transform: TP1 convergence.
 *
 * For random op pairs a, b generated on the same random document (often aimed at the same
 * place, so they conflict: same new key, edits inside a removed subtree, moves into a removed
 * place…):
 *   apply(apply(doc, a), transform(b, a, 'right')) deep-equals apply(apply(doc, b), transform(a, b, 'left'))
 * which is what ShareDB relies on when the server and a client transform the same two ops in
 * opposite orders. A third of the ops are long compositions, the shape ShareDB submits after
 * composing a client's queued or offline edits. Pinned exact cases (pinned-cases.ts) run first:
 * they are known ot-json1 defects, asserted to be still present upstream (a canary), to be
 * worked around by tandemJson1 (TP1 holds) and by the SDK's rebase (rebaseQueue in
 * client/rebase.ts, re-exported by client/doc-sync.ts).
 *
 * Env:
 *   FUZZ_SEED=<n>[,<n>…]  run only these case seeds (each case prints its own seed on failure)
 *   FUZZ_PAIRS=<n>        number of cases (default 5000)
 */
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import * as json1 from 'ot-json1';
import type { JSONOp, Path } from 'ot-json1';
import { tandemJson1 } from '../../ot-types/index.js';
import { rebaseQueue } from '../../client/doc-sync.js';
import { checkAgainstApply, initialDoc, OpGenerator, pickFocus, Rng, type Json } from './gen-op.js';
import { PINNED_CASES } from './pinned-cases.js';

/**
 * Case seeds of this file's generator that once failed, run first. None so far: the failures
 * found by longer exploratory runs are pinned as exact ops in pinned-cases.ts and run below.
 */
const PINNED_SEEDS: ReadonlyArray<{ seed: number; found: string }> = [];

const FIRST_SEED = 1_000_000;
const PAIRS = Number(process.env.FUZZ_PAIRS ?? 5000);

interface Case {
  seed: number;
  doc: Json;
  a: JSONOp;
  b: JSONOp;
  kinds: [string, string];
}

/** Builds one case from its seed alone: a random document (evolved a little) and two ops on it. */
function makeCase(seed: number): Case {
  const rng = new Rng(seed);
  const gen = new OpGenerator(rng.fork());
  let doc = initialDoc(rng);
  for (let i = rng.int(25); i > 0; i--) doc = gen.generate(doc).after;
  const focus = rng.chance(0.6) ? pickFocus(rng, doc) : null;
  const a = opOnDoc(rng, gen, doc, focus);
  const b = opOnDoc(rng, gen, doc, focus);
  return { seed, doc, a: a.op, b: b.op, kinds: [a.kind, b.kind] };
}

/**
 * One op on `doc`; a third of the time a long composition of several generated ops, the
 * shape ShareDB submits after composing a client's queued (or offline) edits into one op.
 */
function opOnDoc(rng: Rng, gen: OpGenerator, doc: Json, focus: Path | null): { op: JSONOp; kind: string } {
  if (!rng.chance(1 / 3)) return gen.generate(doc, { focus });
  let op: JSONOp = null;
  let current = doc;
  const parts = rng.range(2, 8);
  for (let i = 0; i < parts; i++) {
    const next = gen.generate(current, { focus });
    op = tandemJson1.compose(op, next.op);
    current = next.after;
  }
  checkAgainstApply(doc, op, current, `queue of ${parts}`);
  return { op, kind: `queue of ${parts}` };
}

/** ot-json1's own conflict-resolving type, without Tandem's agreeing 'right' transform. */
const upstreamJson1 = json1.type.typeAllowingConflictsPred(() => true);

/**
 * Null when TP1 holds for the case under `T` (tandemJson1 unless told), else a description
 * with a copy-paste reproduction.
 */
function checkTp1(
  c: Case,
  reproduce = `FUZZ_SEED=${c.seed} npx mocha test/fuzz/transform.test.ts`,
  T: Pick<typeof tandemJson1, 'transform' | 'apply' | 'checkValidOp'> = tandemJson1,
): string | null {
  let problem: string;
  let detail = '';
  let step = "transform(b, a, 'right')";
  try {
    const bAfterA = T.transform(c.b, c.a, 'right');
    step = "transform(a, b, 'left')";
    const aAfterB = T.transform(c.a, c.b, 'left');
    step = 'checkValidOp on the transformed ops';
    T.checkValidOp(bAfterA);
    T.checkValidOp(aAfterB);
    step = "apply(apply(doc, a), b')";
    const viaA = T.apply(T.apply(structuredClone(c.doc), c.a), bAfterA);
    step = "apply(apply(doc, b), a')";
    const viaB = T.apply(T.apply(structuredClone(c.doc), c.b), aAfterB);
    if (isDeepStrictEqual(viaA, viaB)) return null;
    problem = 'TP1 violated: the two orders end in different documents';
    detail =
      `\n  transform(b, a, 'right') = ${JSON.stringify(bAfterA)}\n  transform(a, b, 'left')  = ${JSON.stringify(aAfterB)}` +
      `\n  a then b' = ${JSON.stringify(viaA)}\n  b then a' = ${JSON.stringify(viaB)}`;
  } catch (err) {
    const e = err as Error;
    // json1's internal asserts throw with an empty message: show where instead.
    const where = (e.stack ?? '')
      .split('\n')
      .slice(1, 4)
      .map((l) => l.trim().replace(/^at /, ''))
      .join(' < ');
    problem = `${step} threw: ${e.message || '(no message)'} at ${where}`;
  }
  return (
    `${c.seed >= 0 ? `case seed ${c.seed}` : 'pinned case'} (a: ${c.kinds[0]}, b: ${c.kinds[1]}): ${problem}${detail}\n` +
    `  reproduce: ${reproduce}\n` +
    `  or in node (ot-json1 alone):\n` +
    `    const { type } = require('ot-json1'); const T = type.typeAllowingConflictsPred(() => true);\n` +
    `    const doc = ${JSON.stringify(c.doc)};\n` +
    `    const a = ${JSON.stringify(c.a)};\n` +
    `    const b = ${JSON.stringify(c.b)};\n` +
    `    console.log(JSON.stringify(T.apply(T.apply(doc, a), T.transform(b, a, 'right'))));\n` +
    `    console.log(JSON.stringify(T.apply(T.apply(doc, b), T.transform(a, b, 'left'))));`
  );
}

function caseSeeds(): number[] {
  const only = process.env.FUZZ_SEED;
  if (only !== undefined && only !== '') return only.split(',').map((s) => Number(s.trim()));
  if (!Number.isInteger(PAIRS) || PAIRS <= 0) throw new Error(`FUZZ_PAIRS: expected a positive integer, got "${process.env.FUZZ_PAIRS}"`);
  return [...PINNED_SEEDS.map((p) => p.seed), ...Array.from({ length: PAIRS }, (_, i) => FIRST_SEED + i)];
}

describe('fuzz: tandemJson1 transform converges (TP1)', function () {
  this.timeout(120_000);

  if (!process.env.FUZZ_SEED) {
    for (const pinned of PINNED_CASES) {
      // Canary: the pinned pairs are upstream json1 bugs, worked around by tandemJson1's
      // agreeing 'right' transform (ot-types/symmetric-transform.ts) and by the SDK's rebase
      // (client/rebase.ts). Once json1 itself fixes one, this fails on purpose.
      it(`pinned case (json1 defect still present upstream): ${pinned.name}`, () => {
        const failure = checkTp1(
          { seed: -1, doc: pinned.doc, a: pinned.a, b: pinned.b, kinds: ['pinned', 'pinned'] },
          `npx mocha test/fuzz/transform.test.ts -g 'pinned case'`,
          upstreamJson1,
        );
        const still = failure !== null && (pinned.defect === 'throws' ? failure.includes('threw') : failure.includes('TP1 violated'));
        assert.ok(
          still,
          `json1 no longer shows the pinned defect (${pinned.defect}) on "${pinned.name}": upstream seems to have fixed it. ` +
            "Consider dropping Tandem's workarounds (ot-types/symmetric-transform.ts, the rebase check in client/doc-sync.ts / " +
            "client/rebase.ts and tandemJson1.transform's error wrapping) once no pinned case fails." +
            (failure ? `\n  now: ${failure}` : ''),
        );
      });

      // What stock ShareDB clients rely on: tandemJson1's two directions agree on the pair.
      it(`pinned case (tandemJson1 converges, TP1 holds): ${pinned.name}`, () => {
        const failure = checkTp1(
          { seed: -1, doc: pinned.doc, a: pinned.a, b: pinned.b, kinds: ['pinned', 'pinned'] },
          `npx mocha test/fuzz/transform.test.ts -g 'pinned case'`,
        );
        assert.equal(failure, null);
      });

      // The SDK's rebase: the local data a client derives from the server snapshot after `b`
      // and its own queued `a` (plus `followUp`) is exactly what the server will hold.
      it(`pinned case (SDK rebase gives the server's result): ${pinned.name}`, () => {
        const T = tandemJson1;
        const queue = pinned.followUp ? [pinned.a, pinned.followUp] : [pinned.a];
        const result = rebaseQueue(T, structuredClone(pinned.doc), pinned.b, queue);
        // The server commits b, then transform(a, b, 'left'), then the follow-up as rebased.
        const serverAfterB = T.apply(structuredClone(pinned.doc), pinned.b);
        const aOnServer = T.transform(pinned.a, pinned.b, 'left');
        let server = T.apply(serverAfterB, aOnServer);
        assert.deepEqual(result.confirmed, serverAfterB);
        assert.deepEqual(result.rebased[0], aOnServer);
        // b, carried past a 'right', can now be carried past the follow-up too: nothing is dropped.
        assert.equal(result.dropped, 0);
        if (pinned.followUp) {
          const followUpOnServer = T.transform(pinned.followUp, T.transform(pinned.b, pinned.a, 'right'), 'left');
          assert.deepEqual(result.rebased[1], followUpOnServer);
          server = T.apply(server, followUpOnServer);
        }
        assert.deepEqual(result.local, server);
        // ShareDB's own rebase (a, then b transformed 'right') gets there too with tandemJson1.
        const viaTp1 = T.apply(T.apply(structuredClone(pinned.doc), pinned.a), T.transform(pinned.b, pinned.a, 'right'));
        assert.deepEqual(viaTp1, T.apply(serverAfterB, aOnServer));
      });
    }
  }

  it('for random (often conflicting) op pairs on random documents, both orders give the same document', () => {
    const seeds = caseSeeds();
    const failures: string[] = [];
    const kinds = new Map<string, number>();
    for (const seed of seeds) {
      const c = makeCase(seed);
      for (const k of c.kinds) kinds.set(k, (kinds.get(k) ?? 0) + 1);
      const failure = checkTp1(c);
      if (failure) failures.push(failure);
      if (failures.length >= 3) break;
    }
    assert.ok(failures.length === 0, `${failures.length} TP1 failure(s) in ${seeds.length} cases:\n${failures.join('\n\n')}`);
    // Every kind of op the generator knows took part.
    for (const kind of ['insert', 'remove', 'replace', 'move', 'move-within', 'text-insert', 'text-delete', 'add']) {
      if (seeds.length >= 1000) assert.ok((kinds.get(kind) ?? 0) > 0, `no ${kind} op generated`);
    }
  });
});
