/**
 * `npm run bench:text`: what text edits cost through tandemJson1 with the fast apply
 * (ot-types/text-positions.ts) and with ot-text-unicode's own, on chained documents (each op
 * applied to the previous result, as a server or a client applies them):
 * - one document, one-character inserts at random offsets;
 * - ten documents of identical starting text taking turns (their texts keep having equal
 *   lengths): in a fixed order, in shuffled rounds, and in shuffled rounds with the server's
 *   size check (opSizeDelta) before each apply, with and without a document key;
 * - opSizeDelta of inserts and deletes on a chained 1 MB text.
 * A measurement, so not part of `npm test` (where it took 24 s and could not fail); the
 * correctness of the fast apply is test/unit/text-positions.test.ts's.
 */
import * as json1 from 'ot-json1';
import * as textUnicode from 'ot-text-unicode';
import type { TextOp } from 'ot-text-unicode';
import { tandemJson1, type JSONOp, type JsonValue } from '../ot-types/index.js';
import { fastTextUnicode } from '../ot-types/text-positions.js';
import { opSizeDelta } from '../server/limits/doc-size.js';
import { machineLine } from './bench/table.js';
import { createRng } from './rng.js';
import { machineInfo } from './run-load.js';

const SIZES = [
  ['1 KB', 1024],
  ['128 KB', 128 * 1024],
  ['1 MB', 1024 * 1024],
] as const;

type Order = 'fixed' | 'shuffled';
type SizeCheck = 'none' | 'unkeyed' | 'keyed';

let run = 0;

/** A text of `units` units that starts with a character of its own, so earlier runs' texts never compare equal at the first unit. */
function startingText(units: number): string {
  const first = String.fromCharCode(0x41 + (run++ % 50));
  return (first + 'lorem ipsum dolor sit amet, '.repeat(Math.ceil(units / 28))).slice(0, units);
}

function withOriginalTextType<T>(fn: () => T): T {
  json1.type.registerSubtype(textUnicode.type);
  try {
    return fn();
  } finally {
    json1.type.registerSubtype(fastTextUnicode);
  }
}

/** µs per op of `ops` chained one-character inserts at random offsets over `docs` documents. */
function chain(units: number, docs: number, ops: number, order: Order, sizeCheck: SizeCheck): number {
  const rng = createRng(units + docs);
  const text = startingText(units);
  // Distinct strings of equal content, as documents loaded separately are.
  const all: JsonValue[] = Array.from({ length: docs }, () => ({ text: (' ' + text).slice(1) }));
  const step = (k: number): void => {
    const doc = all[k] as { text: string };
    const op = json1.editOp(['text'], 'text-unicode', textUnicode.insert(rng.int(doc.text.length + 1), 'x'));
    if (sizeCheck !== 'none') opSizeDelta(doc, op, sizeCheck === 'keyed' ? `docs/${k}` : undefined);
    all[k] = tandemJson1.apply(doc, op) as JsonValue;
  };
  let turns: number[] = [];
  const next = (n: number): number => {
    if (order === 'fixed') return n % docs;
    if (turns.length === 0) turns = [...all.keys()].sort(() => rng.next() - 0.5);
    return turns.pop()!;
  };
  for (let n = 0; n < 2 * docs; n++) step(next(n));
  const started = process.hrtime.bigint();
  for (let n = 0; n < ops; n++) step(next(n));
  return Number(process.hrtime.bigint() - started) / 1000 / ops;
}

const cell = (us: number): string => `${us.toFixed(1).padStart(8)} µs`;

function oneDocument(): void {
  const rows = SIZES.map(([label, units]) => {
    const fast = chain(units, 1, 2000, 'fixed', 'none');
    const slow = withOriginalTextType(() => chain(units, 1, units > 200_000 ? 100 : 500, 'fixed', 'none'));
    return `${label.padEnd(7)} fast ${cell(fast)}   original ${cell(slow)}`;
  });
  console.log(`one document: one-character inserts at random offsets, 2,000 chained; per op:\n${rows.map((r) => `  ${r}`).join('\n')}`);
}

function tenDocuments(): void {
  const rows = SIZES.map(([label, units]) => {
    const fixed = chain(units, 10, 2000, 'fixed', 'none');
    const shuffled = chain(units, 10, 2000, 'shuffled', 'none');
    const unkeyed = chain(units, 10, 2000, 'shuffled', 'unkeyed');
    const keyed = chain(units, 10, 2000, 'shuffled', 'keyed');
    const slow = withOriginalTextType(() => chain(units, 10, units > 200_000 ? 100 : 500, 'shuffled', 'none'));
    return (
      `${label.padEnd(7)} apply: fixed order ${cell(fixed)}  shuffled ${cell(shuffled)}  original ${cell(slow)}` +
      `   size check + apply, shuffled: no key ${cell(unkeyed)}  document key ${cell(keyed)}`
    );
  });
  console.log(
    `ten documents of identical starting text taking turns, 2,000 chained ops in all; per op:\n${rows.map((r) => `  ${r}`).join('\n')}`,
  );
}

function sizeChecks(): void {
  const rng = createRng(1);
  let doc = { text: startingText(1 << 20) } as JsonValue;
  const withPair = { text: `${startingText(1 << 20)}😀` };
  const randomOp = (text: string): JSONOp => {
    const at = rng.int(text.length - 100);
    const roll = rng.next();
    const count = 1 + rng.int(50);
    const textOp: TextOp =
      roll < 0.4 ? textUnicode.insert(at, 'xy') : textUnicode.remove(at, roll < 0.7 ? count : text.slice(at, at + count));
    return json1.editOp(['text'], 'text-unicode', textOp);
  };
  let sizing = 0n;
  let applying = 0n;
  const ops = 2000;
  for (let n = 0; n < ops; n++) {
    const op = randomOp((doc as { text: string }).text);
    const t0 = process.hrtime.bigint();
    opSizeDelta(doc, op, 'docs/one');
    const t1 = process.hrtime.bigint();
    doc = tandemJson1.apply(doc, op) as JsonValue;
    sizing += t1 - t0;
    applying += process.hrtime.bigint() - t1;
  }
  let slow = 0n;
  for (let n = 0; n < 50; n++) {
    const op = randomOp(withPair.text);
    const t0 = process.hrtime.bigint();
    opSizeDelta(withPair, op);
    slow += process.hrtime.bigint() - t0;
  }
  const us = (total: bigint, n: number): string => cell(Number(total) / 1000 / n);
  console.log(
    `opSizeDelta on a chained 1 MB text, inserts and deletes by count and by text; per op:\n  opSizeDelta ${us(sizing, ops)}   apply ${us(applying, ops)}   opSizeDelta on a text with a pair (exact walk) ${us(slow, 50)}`,
  );
}

console.log(`npm run bench:text — ${machineLine(machineInfo(), '')} — ${new Date().toISOString()}`);
chain(4096, 1, 3000, 'fixed', 'none'); // JIT warm-up
oneDocument();
tenDocuments();
sizeChecks();
