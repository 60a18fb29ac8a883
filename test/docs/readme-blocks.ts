/**
 * README.md split into its fenced code blocks, each with the heading it sits under and the
 * prose between that heading and the block (some snippets leave their imports to the prose).
 * Read at test time, so the walkthrough always runs the README as it is now.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: README's relative paths (`./client/…`, `bin/…`) are relative to it. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

export interface ReadmeBlock {
  /** 1-based position among README's fenced blocks. */
  readonly index: number;
  /** The info string's first word (`sh`, `ts`, `json`, …); '' for a bare fence. */
  readonly lang: string;
  readonly code: string;
  /** 1-based README line of the opening fence. */
  readonly line: number;
  /** The nearest heading above the block, without its `#`s. */
  readonly heading: string;
  /** The enclosing headings, outermost first (`['Client SDK', 'Editor bindings and embedding']`). */
  readonly headings: readonly string[];
  /** README text from the nearest heading down to the block (fences of earlier blocks included). */
  readonly prose: string;
}

/**
 * README.md, or the file README_WALKTHROUGH_FILE names: a way to check the walkthrough itself
 * against an edited copy (a broken command must fail it) without touching README.md.
 */
export function readReadme(): string {
  return readFileSync(process.env.README_WALKTHROUGH_FILE || join(ROOT, 'README.md'), 'utf8');
}

/**
 * Every fenced block of `markdown`. Lines inside a fence are never headings (a shell
 * comment starts with `#` too); an unclosed fence is an error, not a silently dropped block.
 */
export function fencedBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n');
  const blocks: ReadmeBlock[] = [];
  const stack: Array<{ level: number; text: string }> = [];
  let headingLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heading = /^(#{1,6})\s+(.*?)\s*$/.exec(line);
    if (heading) {
      const level = heading[1]!.length;
      while (stack.length && stack[stack.length - 1]!.level >= level) stack.pop();
      stack.push({ level, text: heading[2]! });
      headingLine = i;
      continue;
    }
    const fence = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(line);
    if (!fence) continue;
    const marker = fence[2]!;
    const start = i;
    let end = i + 1;
    while (end < lines.length && !lines[end]!.trimStart().startsWith(marker)) end++;
    if (end >= lines.length) throw new Error(`README.md:${start + 1}: fenced block never closed`);
    const indent = fence[1]!.length;
    blocks.push({
      index: blocks.length + 1,
      lang: fence[3]!.toLowerCase(),
      code: lines
        .slice(start + 1, end)
        .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
        .join('\n'),
      line: start + 1,
      heading: stack[stack.length - 1]?.text ?? '',
      headings: stack.map((h) => h.text),
      prose: lines.slice(headingLine, start).join('\n'),
    });
    i = end;
  }
  return blocks;
}

/** `Security (sh, README.md:84)`: how a block is named in test titles and messages. */
export function blockName(block: ReadmeBlock): string {
  return `${block.heading || '(top)'} (${block.lang || 'no language'}, README.md:${block.line})`;
}

/** Inline code spans of `text` (single backticks). */
export function inlineCode(text: string): string[] {
  return [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
}
