/**
 * W6's documents: `{text, items}` with `text` of an exact length in seeded random words and a
 * list of small objects. Every document's text differs from every other's from its first
 * character: a later optimisation compares strings of equal length, and texts that share a
 * long prefix (or are equal) would make such comparisons look slower, or faster, than real
 * documents make them.
 */
import { createRng, hashSeed } from '../rng.js';

export interface SweepItem {
  id: string;
  title: string;
  done: boolean;
}

export interface SweepDoc {
  text: string;
  items: SweepItem[];
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/**
 * `chars` characters of lower-case words (1–9 letters) separated by single spaces, ASCII only
 * so that characters, UTF-16 units and code points are the same count (ops address code
 * points). The first word is the document's own letter (`index` mod 26), so the texts of up
 * to 26 documents differ at once; the rest comes from a PRNG seeded per document.
 */
export function sweepText(chars: number, index: number, seed: number): string {
  if (chars <= 0) return '';
  const rng = createRng(hashSeed(seed, 'w6-text', index));
  const parts: string[] = [LETTERS[index % LETTERS.length]!];
  let length = 1;
  while (length < chars) {
    let word = ' ';
    const letters = 1 + rng.int(9);
    for (let i = 0; i < letters; i++) word += LETTERS[rng.int(LETTERS.length)];
    parts.push(word);
    length += word.length;
  }
  return parts.join('').slice(0, chars);
}

/** The whole document W6 creates: its text, and `items` list entries `{id, title, done}`. */
export function sweepDoc(chars: number, items: number, index: number, seed: number): SweepDoc {
  return {
    text: sweepText(chars, index, seed),
    items: Array.from({ length: items }, (_, i) => ({ id: `i${i}`, title: `item ${i}`, done: false })),
  };
}
