/**
 * What a simulated client does: text typing, structural edits and presence updates on a
 * document shaped `{text, items, props}`, chosen by a seeded PRNG and always valid against
 * the client's current local copy (ShareDB transforms them later as needed). Sizes are
 * bounded so a long run does not grow documents without limit.
 */
import type { JSONOp } from 'ot-json1';
import { ops, setOp } from '../ot-types/index.js';
import type { OpKind, OpMix } from './options.js';
import { OP_KINDS } from './options.js';
import type { Rng } from './rng.js';

export interface LoadItem {
  id: string;
  n: number;
}

export interface LoadDocShape {
  text: string;
  items: LoadItem[];
  props: Record<string, number>;
}

export const INITIAL_DOC: Readonly<LoadDocShape> = Object.freeze({ text: '', items: [], props: {} });

/** Longest text and list a run lets a document reach before edits start shrinking them. */
export const MAX_TEXT = 2_000;
export const MAX_ITEMS = 40;
const PROP_KEYS = 10;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz     ';

/** Presence a load client sends: a caret in `text`, stamped so receivers can time it. */
export interface LoadPresence {
  path: ['text'];
  anchor: number;
  head: number;
  user: { c: number; t: number };
}

export type Action = { kind: 'text' | 'struct'; op: JSONOp } | { kind: 'presence'; caret: number };

export function isLoadDoc(data: unknown): data is LoadDocShape {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Partial<LoadDocShape>;
  return typeof d.text === 'string' && Array.isArray(d.items) && typeof d.props === 'object' && d.props !== null;
}

/** Picks a kind by weight. */
export function pickKind(mix: OpMix, rng: Rng): OpKind {
  const total = OP_KINDS.reduce((sum, k) => sum + mix[k], 0);
  let r = rng.next() * total;
  for (const kind of OP_KINDS) {
    r -= mix[kind];
    if (r < 0 && mix[kind] > 0) return kind;
  }
  return OP_KINDS.find((k) => mix[k] > 0)!;
}

/** One client's generator; keeps the caret so typing looks like a person typing. */
export class ClientWorkload {
  private caret = 0;
  private made = 0;

  constructor(
    private readonly client: number,
    private readonly mix: OpMix,
    private readonly rng: Rng,
  ) {}

  /** The next action for the document as this client currently sees it (null: not ready). */
  next(data: unknown): Action | null {
    if (!isLoadDoc(data)) return null;
    const kind = pickKind(this.mix, this.rng);
    const length = [...data.text].length;
    this.caret = Math.min(this.caret, length);
    if (kind === 'presence') {
      if (this.rng.next() < 0.3) this.caret = this.rng.int(length + 1);
      return { kind, caret: this.caret };
    }
    if (kind === 'text') return { kind, op: this.typing(length) };
    return { kind, op: this.structural(data) };
  }

  presenceValue(caret: number, at: number): LoadPresence {
    return { path: ['text'], anchor: caret, head: caret, user: { c: this.client, t: at } };
  }

  private typing(length: number): JSONOp {
    if (length >= MAX_TEXT) {
      // Select-and-delete a run, as an editor does, to keep the text bounded.
      const at = this.rng.int(length - 20);
      this.caret = at;
      return ops.textDelete(['text'], at, 1 + this.rng.int(20));
    }
    if (this.rng.next() < 0.05) this.caret = this.rng.int(length + 1);
    if (this.caret > 0 && this.rng.next() < 0.1) {
      this.caret--;
      return ops.textDelete(['text'], this.caret, 1);
    }
    const ch = ALPHABET[this.rng.int(ALPHABET.length)]!;
    return ops.textInsert(['text'], this.caret++, ch);
  }

  private structural(data: LoadDocShape): JSONOp {
    const n = data.items.length;
    const r = this.rng.next();
    if (n >= MAX_ITEMS || (n > 0 && r < 0.2)) return ops.remove(['items', this.rng.int(n)]);
    if (n < 2 || r < 0.45) {
      return ops.insert(['items', this.rng.int(n + 1)], { id: `c${this.client}-${this.made++}`, n: 0 });
    }
    if (r < 0.65) {
      const from = this.rng.int(n);
      const to = (from + 1 + this.rng.int(n - 1)) % n;
      return ops.move(['items', from], ['items', to]);
    }
    if (r < 0.8) return ops.add(['items', this.rng.int(n), 'n'], 1);
    const key = `k${this.rng.int(PROP_KEYS)}`;
    return setOp(['props', key], this.rng.int(1000), key in data.props);
  }
}
