/**
 * One table of error codes (ARCHITECTURE.md §4): every code the server, the SDK and the
 * `tandem` command line can produce is a member of `TandemErrorCode` (or, for ShareDB's own
 * codes, of `ShareDbErrorCode`), and README's error tables list exactly those members, each
 * with a description. Fails when a code is written as a string of its own somewhere the table
 * does not know, when a table member is declared but never produced, or when README drifts.
 *
 * Sources are read as TypeScript/JavaScript syntax trees, so only string and template
 * literals count (identifiers such as `TANDEM_CLIENT_NAME` and comments do not).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { ShareDbErrorCode, TandemErrorCode } from '../../client/protocol.js';
import { TRANSFORM_FAILED_CODE } from '../../ot-types/index.js';
import { readReadme, ROOT } from './readme-blocks.js';

/** Where codes are produced: server, SDK, shared types, load tool, the bin and build scripts, the demo. */
const SOURCE_DIRS = ['server', 'client', 'ot-types', 'load', 'bin', 'scripts', 'demo'];
const SOURCE_EXTENSIONS = /\.(ts|tsx|mts|js|mjs|cjs)$/;
/** Build output and installed packages are not sources. */
const SKIPPED_DIRS = new Set(['node_modules', 'dist']);
/** The table itself: its own literals are the definitions. */
const TABLE_FILE = 'client/protocol.ts';

const TANDEM_CODE = /\bTANDEM_[A-Z0-9_]+\b/g;
const SHAREDB_CODE = /\bERR_[A-Z0-9_]+\b/g;

interface Found {
  code: string;
  /** `path:line` of the literal. */
  where: string;
}

interface ScannedFile {
  path: string;
  /** TANDEM_… and ERR_… tokens inside string and template literals. */
  literals: Found[];
  /** `TandemErrorCode.KEY` references, by KEY. */
  references: Set<string>;
}

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    if (SKIPPED_DIRS.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...sourceFiles(path));
    else if (SOURCE_EXTENSIONS.test(name) && !name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

function scan(path: string): ScannedFile {
  const text = readFileSync(path, 'utf8');
  const rel = relative(ROOT, path);
  const source = ts.createSourceFile(rel, text, ts.ScriptTarget.Latest, true);
  const literals: Found[] = [];
  const references = new Set<string>();
  const visit = (node: ts.Node): void => {
    if (
      ts.isStringLiteral(node) ||
      ts.isNoSubstitutionTemplateLiteral(node) ||
      ts.isTemplateHead(node) ||
      ts.isTemplateMiddle(node) ||
      ts.isTemplateTail(node)
    ) {
      const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      for (const match of node.text.matchAll(TANDEM_CODE)) literals.push({ code: match[0], where: `${rel}:${line}` });
      for (const match of node.text.matchAll(SHAREDB_CODE)) literals.push({ code: match[0], where: `${rel}:${line}` });
    } else if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'TandemErrorCode') {
      references.add(node.name.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { path: rel, literals, references };
}

/** The rows of README's tables under `### Errors`, as [code, description]. */
function readmeErrorRows(): Array<[code: string, description: string]> {
  const readme = readReadme();
  const start = readme.indexOf('\n### Errors\n');
  assert.ok(start >= 0, 'README has a "### Errors" section');
  const next = readme.slice(start + 1).search(/\n#{1,3} /);
  const section = next < 0 ? readme.slice(start) : readme.slice(start, start + 1 + next);
  const rows: Array<[string, string]> = [];
  for (const line of section.split('\n')) {
    const cells = /^\|(.*)\|\s*$/
      .exec(line)?.[1]
      ?.split('|')
      .map((cell) => cell.trim());
    if (!cells || cells[0] === 'Code' || /^-+$/.test(cells[0] ?? '')) continue;
    assert.equal(cells.length, 2, `an error table row has a code and a description: ${line}`);
    const code = /^`([A-Z0-9_]+)`$/.exec(cells[0]!)?.[1];
    assert.ok(code, `one code per row, in backticks: ${line}`);
    rows.push([code, cells[1]!]);
  }
  return rows;
}

/** ShareDB 7's own table of codes (lib/error.js), untyped in @types/sharedb. */
function shareDbCodes(): Set<string> {
  const require = createRequire(import.meta.url);
  const { CODES } = require('sharedb/lib/error.js') as { CODES: Record<string, string> };
  return new Set(Object.values(CODES));
}

describe('error codes: one table, produced through it, documented in README', () => {
  const tandemCodes = new Set<string>(Object.values(TandemErrorCode));
  const ourShareDbCodes = new Set<string>(Object.values(ShareDbErrorCode));
  const files = SOURCE_DIRS.flatMap((dir) => sourceFiles(join(ROOT, dir))).map(scan);

  it('scans the places codes come from', () => {
    const paths = files.map((f) => f.path);
    for (const expected of [
      'server/transport/socketio.ts',
      'client/tandem-client.ts',
      'ot-types/json1-type.ts',
      'load/options.ts',
      'bin/tandem.js',
    ]) {
      assert.ok(paths.includes(expected), `${expected} is scanned`);
    }
  });

  it('TandemErrorCode: each member is TANDEM_ + its key, and no value twice', () => {
    for (const [key, value] of Object.entries(TandemErrorCode)) assert.equal(value, `TANDEM_${key}`);
    assert.equal(tandemCodes.size, Object.keys(TandemErrorCode).length);
  });

  it('every TANDEM_… string in the sources is a TandemErrorCode member', () => {
    const unknown = files
      .filter((f) => f.path !== TABLE_FILE)
      .flatMap((f) => f.literals)
      .filter((found) => found.code.startsWith('TANDEM_') && !tandemCodes.has(found.code));
    assert.deepEqual(unknown, [], 'add these codes to TandemErrorCode (client/protocol.ts) and README, and produce them through the table');
  });

  it('only modules that cannot import the table write a code as a string (and say which member it is)', () => {
    // ot-types sits below client/ in the import order; bin/tandem.js runs before anything is built.
    const allowed = new Set(['ot-types/json1-type.ts', 'bin/tandem.js']);
    const literal = files
      .filter((f) => f.path !== TABLE_FILE && !allowed.has(f.path))
      .flatMap((f) => f.literals)
      .filter((found) => found.code.startsWith('TANDEM_'));
    assert.deepEqual(literal, [], 'use TandemErrorCode.<KEY> instead of the string');
    assert.equal(TRANSFORM_FAILED_CODE, TandemErrorCode.TRANSFORM_FAILED);
  });

  it('every TandemErrorCode member is produced somewhere (none declared and unused)', () => {
    const referenced = new Set(files.filter((f) => f.path !== TABLE_FILE).flatMap((f) => [...f.references]));
    const asLiteral = new Set(files.filter((f) => f.path !== TABLE_FILE).flatMap((f) => f.literals.map((found) => found.code)));
    const unused = Object.entries(TandemErrorCode)
      .filter(([key, value]) => !referenced.has(key) && !asLiteral.has(value))
      .map(([key]) => key);
    assert.deepEqual(unused, [], 'produce these codes or remove them from the table and README');
    const undeclared = [...referenced].filter((key) => !(key in TandemErrorCode));
    assert.deepEqual(undeclared, [], 'TandemErrorCode.<KEY> references to keys the table lacks');
  });

  it('every ShareDB code in the sources is a ShareDbErrorCode member, and every member is a ShareDB code', () => {
    const shareDb = shareDbCodes();
    const missing = files
      .filter((f) => f.path !== TABLE_FILE)
      .flatMap((f) => f.literals)
      // Node's own codes (ERR_STREAM_…) share the prefix: only ShareDB's are ours to list.
      .filter((found) => shareDb.has(found.code) && !ourShareDbCodes.has(found.code));
    assert.deepEqual(missing, [], 'add these ShareDB codes to ShareDbErrorCode (client/protocol.ts) and README, and use the member');
    assert.deepEqual(
      [...ourShareDbCodes].filter((code) => !shareDb.has(code)),
      [],
      'ShareDbErrorCode holds codes ShareDB does not have',
    );
  });

  it("README's error tables list exactly the table's codes, once each, each with a description", () => {
    const rows = readmeErrorRows();
    const codes = rows.map(([code]) => code);
    assert.deepEqual(
      codes.filter((code, i) => codes.indexOf(code) !== i),
      [],
      'codes listed twice',
    );
    for (const [code, description] of rows) assert.ok(description.length >= 10, `${code} has a description`);
    const listed = new Set(codes);
    assert.deepEqual(
      [...tandemCodes].filter((c) => !listed.has(c)),
      [],
      'TandemErrorCode members missing from README',
    );
    assert.deepEqual(
      [...ourShareDbCodes].filter((c) => !listed.has(c)),
      [],
      'ShareDbErrorCode members missing from README',
    );
    assert.deepEqual(
      codes.filter((c) => !tandemCodes.has(c) && !ourShareDbCodes.has(c)),
      [],
      'README lists codes the tables do not have',
    );
  });
});
