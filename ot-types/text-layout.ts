/**
 * A long string kept as the flat strings it is made of, so that editing it builds the next
 * string without V8 copying the whole text.
 *
 * Why: V8 makes `a + b` (13 units or more) a cons string pointing at both, and `s.slice()` of
 * a flat or sliced string a sliced string pointing into it, both in O(1). But any read of a
 * cons string's characters (slice, charCodeAt, a regexp, JSON.stringify, even `===` against
 * another string of the same length and first unit) makes V8 flatten it first: copy all of it
 * into a new flat string, about 1 ms per MB here, mostly page faults on the new allocation. An
 * edit built as `prefix + insert + suffix` is a cons string, so slicing it for the next edit
 * copied the whole document on every op.
 *
 * A layout is a list of blocks; a block is a list of pieces, each a flat string or a slice of
 * one, never a cons string made here, and the pieces joined with + (the block's text, never
 * read here). An edit rebuilds the blocks it touches from slices of their pieces and the
 * inserted text, reuses the others as they are, and joins the block texts with + into the new
 * string: O(blocks + pieces of the touched blocks + op), nothing proportional to the text.
 * A rebuilt block with more than `maxPieces` pieces is copied into one flat string with
 * Array.prototype.join (which writes a flat string for two or more parts): a copy of that
 * block alone, once per so many edits in it. Blocks are kept near `blockChars(length)` units,
 * split by slicing and merged by joining piece lists; that size grows as the square root of
 * the text so that the walk over blocks and the block copies both stay small (64 blocks of
 * 16 K units and 32 pieces at most for 1 M units by default).
 */

export interface LayoutLimits {
  /** A rebuilt block with more pieces is copied into one flat string. */
  maxPieces: number;
  /** Blocks aim at max(minBlockChars, blockScale × √length) units of a `length`-unit text. */
  minBlockChars: number;
  blockScale: number;
}

interface Block {
  /** Flat strings or slices of flat strings, none empty. */
  readonly pieces: readonly string[];
  readonly length: number;
  /** The pieces joined with +. */
  readonly text: string;
}

export interface Layout {
  readonly blocks: readonly Block[];
  readonly length: number;
}

/** Delete input units [at, end), then insert `insert` there (UTF-16 offsets in the input). */
export interface TextEdit {
  at: number;
  end: number;
  insert: string;
}

export const blockChars = (length: number, limits: Readonly<LayoutLimits>): number =>
  Math.max(limits.minBlockChars, Math.ceil(limits.blockScale * Math.sqrt(length)), 1);

function joinPlus(pieces: readonly string[]): string {
  let text = '';
  for (const piece of pieces) text += piece;
  return text;
}

function block(pieces: string[], length: number, limits: Readonly<LayoutLimits>): Block {
  if (pieces.length <= limits.maxPieces) return { pieces, length, text: joinPlus(pieces) };
  const flat = pieces.join('');
  return { pieces: [flat], length, text: flat };
}

/** Appends to `into` the parts of `pieces` (which start at offset 0) within [from, to). */
function slicePieces(pieces: readonly string[], from: number, to: number, into: string[]): void {
  let offset = 0;
  for (const piece of pieces) {
    const end = offset + piece.length;
    if (end > from && offset < to) {
      const a = Math.max(from, offset) - offset;
      const b = Math.min(to, end) - offset;
      into.push(a === 0 && b === piece.length ? piece : piece.slice(a, b));
    }
    if (end >= to) return;
    offset = end;
  }
}

/**
 * Appends a rebuilt block to `out`: nothing if empty; merged with the block before it when
 * either is under half the target size; cut into blocks of about the target size by slicing
 * when over twice that.
 */
function emit(out: Block[], pieces: string[], length: number, target: number, limits: Readonly<LayoutLimits>): void {
  if (length === 0) return;
  const previous = out[out.length - 1];
  if (previous !== undefined && Math.min(previous.length, length) < target / 2) {
    out.pop();
    pieces = [...previous.pieces, ...pieces];
    length += previous.length;
  }
  const parts = length > 2 * target ? Math.round(length / target) : 1;
  if (parts === 1) {
    out.push(block(pieces, length, limits));
    return;
  }
  let from = 0;
  for (let k = 1; k <= parts; k++) {
    const to = k === parts ? length : Math.round((k * length) / parts);
    const part: string[] = [];
    slicePieces(pieces, from, to, part);
    out.push(block(part, to - from, limits));
    from = to;
  }
}

/**
 * The layout of `text`, which must be flat already or V8 copies it here (a string just
 * scanned with a regexp is: V8 flattened it in place for the scan).
 */
export function layoutOf(text: string, limits: Readonly<LayoutLimits>): Layout {
  const blocks: Block[] = [];
  emit(blocks, text.length > 0 ? [text] : [], text.length, blockChars(text.length, limits), limits);
  return { blocks, length: text.length };
}

/** The layout's text from `start` to `end` (0 ≤ start ≤ end ≤ length), from its pieces. */
export function sliceLayout(layout: Layout, start: number, end: number): string {
  const parts: string[] = [];
  let offset = 0;
  for (const b of layout.blocks) {
    const blockEnd = offset + b.length;
    if (blockEnd > start && offset < end) slicePieces(b.pieces, Math.max(start - offset, 0), Math.min(end, blockEnd) - offset, parts);
    if (blockEnd >= end) break;
    offset = blockEnd;
  }
  return parts.length === 1 ? parts[0] : joinPlus(parts);
}

/** Walks the input blocks once, in step with edits in increasing offsets. */
class Rebuild {
  readonly out: Block[] = [];
  private index = 0;
  /** Input offset where block `index` starts. */
  private start = 0;
  /** Block `index` rebuilt so far, once an edit touches it. */
  private pieces: string[] | null = null;
  private length = 0;
  /** Input offset up to which block `index` has been taken or deleted. */
  private cursor = 0;

  constructor(
    private readonly blocks: readonly Block[],
    private readonly target: number,
    private readonly limits: Readonly<LayoutLimits>,
  ) {}

  private get end(): number {
    return this.start + this.blocks[this.index].length;
  }

  private get last(): boolean {
    return this.index === this.blocks.length - 1;
  }

  /** Copies block `index` from the cursor to `to` into the rebuilt block. */
  private take(to: number): void {
    if (this.pieces === null) this.pieces = [];
    if (to > this.cursor) {
      slicePieces(this.blocks[this.index].pieces, this.cursor - this.start, to - this.start, this.pieces);
      this.length += to - this.cursor;
    }
    this.cursor = to;
  }

  /** Ends block `index`, keeping what is left of it, and moves to the next one. */
  private close(): void {
    const end = this.end;
    if (this.pieces === null) this.out.push(this.blocks[this.index]);
    else {
      this.take(end);
      emit(this.out, this.pieces, this.length, this.target, this.limits);
    }
    this.index++;
    this.start = this.cursor = end;
    this.pieces = null;
    this.length = 0;
  }

  /**
   * Moves to the block that holds offset `at`. An offset on a boundary belongs to the block
   * that starts there, and the end of the text to the last block.
   */
  private seek(at: number): void {
    while (!this.last && at >= this.end) this.close();
  }

  apply(edit: TextEdit): void {
    this.seek(edit.at);
    this.take(edit.at);
    if (edit.insert.length > 0) {
      this.pieces?.push(edit.insert);
      this.length += edit.insert.length;
    }
    while (edit.end > this.end && !this.last) {
      this.cursor = this.end;
      this.close();
      this.take(this.start);
    }
    this.cursor = Math.max(this.cursor, edit.end);
  }

  finish(): Block[] {
    while (this.index < this.blocks.length) this.close();
    return this.out;
  }
}

/**
 * The layout and the string of `layout`'s text with `edits` applied. Edits are in increasing
 * offsets, within the text, not overlapping (as an ot-text-unicode op walks it).
 */
export function editLayout(layout: Layout, edits: readonly TextEdit[], limits: Readonly<LayoutLimits>): { layout: Layout; text: string } {
  if (edits.length === 0) return { layout, text: joinPlus(layout.blocks.map((b) => b.text)) };
  const blocks = layout.blocks.length > 0 ? layout.blocks : [{ pieces: [], length: 0, text: '' }];
  const rebuild = new Rebuild(blocks, blockChars(layout.length, limits), limits);
  for (const edit of edits) rebuild.apply(edit);
  const out = rebuild.finish();
  let text = '';
  let length = 0;
  for (const b of out) {
    text += b.text;
    length += b.length;
  }
  return { layout: { blocks: out, length }, text };
}
