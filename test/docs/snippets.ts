/**
 * README ```ts and ```js snippets turned into modules the test can type-check and run.
 * Snippets are fragments: their free names are resolved, in order, from their own `import`
 * lines, the `import { … } from '…'` statements the surrounding prose gives, the exports of
 * modules the prose names (`client/bindings/`), the globals of Node, and the placeholders
 * below for what README leaves to the reader. A name none of these provides makes the
 * snippet unclassified: the walkthrough fails until it is given a source here.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { inlineCode, ROOT, type ReadmeBlock } from './readme-blocks.js';
import { REPORT_MARKER, type SnippetReport } from './snippet-child.js';

/** Mocha's globals exist in the test process but not in a snippet's: they are not globals here. */
const MOCHA_GLOBALS = new Set([
  'describe',
  'it',
  'before',
  'after',
  'beforeEach',
  'afterEach',
  'context',
  'specify',
  'xit',
  'xdescribe',
  'xcontext',
  'xspecify',
  'run',
  'setup',
  'suite',
  'suiteSetup',
  'suiteTeardown',
  'teardown',
  'test',
  'mocha',
]);

function isGlobal(name: string): boolean {
  return name in globalThis && !MOCHA_GLOBALS.has(name);
}

/** A declaration for a name README leaves to the reader. */
interface Placeholder {
  /** Declarations added to the module (type imports with absolute paths). */
  readonly code: string;
  /** False: only exists for the type checker (`declare const`), so the snippet cannot run. */
  readonly runnable: boolean;
  /** How README's text explains the name (for the printed account). */
  readonly what: string;
}

const CLIENT = `${ROOT}/client/index.js`;
const BINDINGS = `${ROOT}/client/bindings/index.js`;
const CODEMIRROR = `${ROOT}/client/codemirror.js`;

const PLACEHOLDERS: Readonly<Record<string, Placeholder>> = {
  // client.doc<Note>(…, { create: { title: '', items: [] } }): the application's document type.
  Note: { code: 'interface Note { title: string; items: string[] }', runnable: true, what: "the application's document type" },
  client: {
    code: `import type { TandemClient as __TandemClient } from '${CLIENT}';\ndeclare const client: __TandemClient;`,
    runnable: false,
    what: 'the client of the Client SDK snippet',
  },
  root: {
    code: "import type { Root as __Root } from 'react-dom/client';\ndeclare const root: __Root;",
    runnable: false,
    what: 'a React root (react-dom/client createRoot, in a page)',
  },
  textarea: { code: 'declare const textarea: HTMLTextAreaElement;', runnable: false, what: 'a <textarea> element (DOM)' },
  parent: { code: 'declare const parent: HTMLElement;', runnable: false, what: "the editor's parent element (DOM)" },
  user: {
    code: `import type { PresenceUser as __PresenceUser } from '${BINDINGS}';\ndeclare const user: __PresenceUser;`,
    runnable: false,
    what: 'the local user ({ name, color })',
  },
  onChange: {
    code: `import type { ChangeOrigin as __ChangeOrigin } from '${BINDINGS}';\ndeclare const onChange: (origin: __ChangeOrigin) => void;`,
    runnable: false,
    what: "the application's change callback",
  },
  // Whatever createCollabEditor accepts: README leaves the CodeMirror extensions to the reader.
  extensions: {
    code: `import type { createCollabEditor as __cce } from '${CODEMIRROR}';\ndeclare const extensions: NonNullable<NonNullable<Parameters<typeof __cce>[3]>['extensions']>;`,
    runnable: false,
    what: 'CodeMirror extensions',
  },
};

export interface SnippetPlan {
  readonly block: ReadmeBlock;
  /** 'run': type-checked (ts) and run in a child process; 'typecheck': type-checked only. */
  readonly mode: 'run' | 'typecheck';
  /** Printed account: where each free name came from, and why a snippet only type-checks. */
  readonly account: string[];
  /** Names nothing provides: the snippet is unclassified. */
  readonly unresolved: string[];
  /** The module (ts: TypeScript, js: CommonJS) with `url` replacing README's server URL. */
  source(url: string): string;
  /** ts: first generated line that is a README line (README.md line = block.line + 1 + offset). */
  readonly bodyLine: number;
}

interface NamedImport {
  readonly name: string;
  readonly from: string;
}

/**
 * This repository's packages as README imports them (`@tandem/client/react`, `@tandem/server`)
 * → their source modules, from each package.json's `exports` (an export's declarations,
 * `./dist/client/react/index.d.ts` or `./dist/types/server/index.d.ts`, name the source file),
 * so snippets check against the sources without a build. test/packaging/ checks the built ones.
 */
const PACKAGE_SOURCES: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>();
  for (const dir of ['.', 'client']) {
    const pkg = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as {
      name: string;
      exports: Record<string, string | { types?: string }>;
    };
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (typeof target === 'string' || !target.types) continue;
      const source = target.types.replace(/^\.\/dist\/(?:types\/)?/, '').replace(/\.d\.ts$/, '.js');
      map.set(pkg.name + subpath.slice(1), join(ROOT, source));
    }
  }
  return map;
})();

/**
 * `import { a, b as c } from './x.js'` (README paths are relative to the repository) → absolute;
 * this repository's packages → their sources.
 */
function absoluteSpecifier(specifier: string): string {
  return specifier.startsWith('.') ? resolve(ROOT, specifier) : (PACKAGE_SOURCES.get(specifier) ?? specifier);
}

function importsOf(statement: string): NamedImport[] {
  const m = /^import\s*(type\s+)?\{([^}]*)\}\s*from\s*'([^']+)';?$/.exec(statement.trim());
  if (!m) return [];
  return m[2]!
    .split(',')
    .map((s) => s.trim().replace(/^type\s+/, ''))
    .filter(Boolean)
    .map((s) => ({ name: s.split(/\s+as\s+/).pop()!, from: absoluteSpecifier(m[3]!) }));
}

/** Names a module exports (declarations, export lists, `export *` followed). */
function exportsOf(file: string, seen = new Set<string>()): Set<string> {
  const names = new Set<string>();
  if (seen.has(file) || !existsSync(file)) return names;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(
    /^export\s+(?:declare\s+)?(?:async\s+)?(?:function\*?|const|let|var|class|interface|type|enum)\s+([A-Za-z_$][\w$]*)/gm,
  ))
    names.add(m[1]!);
  for (const m of text.matchAll(/^export\s+(?:type\s+)?\{([^}]*)\}/gm)) {
    for (const part of m[1]!
      .split(',')
      .map((s) => s.trim().replace(/^type\s+/, ''))
      .filter(Boolean))
      names.add(part.split(/\s+as\s+/).pop()!);
  }
  for (const m of text.matchAll(/^export\s+\*\s+from\s+'([^']+)'/gm)) {
    for (const name of exportsOf(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')), seen)) names.add(name);
  }
  return names;
}

/**
 * Modules the prose names by path (`client/bindings/`, `client/embed.ts`) or as a package
 * (`@tandem/client/bindings`), as TypeScript files.
 */
function proseModules(prose: string): string[] {
  const files: string[] = [];
  for (const span of inlineCode(prose)) {
    const packaged = PACKAGE_SOURCES.get(span);
    if (packaged) {
      files.push(packaged.replace(/\.js$/, '.ts'));
      continue;
    }
    const m = /^(?:\.\/)?((?:client|ot-types)\/[\w./-]*)$/.exec(span);
    if (!m) continue;
    const path = join(ROOT, m[1]!);
    const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'index.ts') : path.replace(/\.js$/, '.ts');
    if (existsSync(file)) files.push(file);
  }
  return files;
}

interface Analysis {
  /** The snippet's own import declarations (text), in order. */
  readonly imports: string[];
  /** The snippet without its imports; they are blanked so README lines keep their offsets. */
  readonly body: string;
  /** Top-level names the snippet declares (returned to the runner to inspect). */
  readonly topLevel: string[];
  /** Names used but declared nowhere in the snippet. */
  readonly free: string[];
}

function declaredName(node: ts.Node): boolean {
  const p = node.parent;
  return (
    ((ts.isVariableDeclaration(p) ||
      ts.isParameter(p) ||
      ts.isFunctionDeclaration(p) ||
      ts.isClassDeclaration(p) ||
      ts.isInterfaceDeclaration(p) ||
      ts.isTypeAliasDeclaration(p) ||
      ts.isImportSpecifier(p) ||
      ts.isBindingElement(p)) &&
      (p as ts.NamedDeclaration).name === node) ||
    (ts.isBindingElement(p) && p.propertyName === node)
  );
}

/** Where a snippet's names come from, by the TypeScript parser (no type checking). */
export function analyse(code: string, lang: 'ts' | 'js'): Analysis {
  const file = ts.createSourceFile(
    `snippet.${lang}`,
    code,
    ts.ScriptTarget.ES2022,
    true,
    lang === 'ts' ? ts.ScriptKind.TS : ts.ScriptKind.JS,
  );
  const imports: string[] = [];
  let body = code;
  for (const statement of file.statements) {
    if (!ts.isImportDeclaration(statement)) continue;
    const text = statement.getText(file);
    imports.push(text);
    body = body.replace(text, text.replace(/[^\n]/g, ' '));
  }
  const topLevel: string[] = [];
  const declared = new Set<string>();
  const used = new Set<string>();
  const collectBinding = (name: ts.BindingName, into: string[]) => {
    if (ts.isIdentifier(name)) into.push(name.text);
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) collectBinding(element.name, into);
  };
  for (const statement of file.statements) {
    if (ts.isVariableStatement(statement)) for (const d of statement.declarationList.declarations) collectBinding(d.name, topLevel);
    else if ((ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement)) && statement.name)
      topLevel.push(statement.name.text);
  }
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node)) {
      const p = node.parent;
      if (declaredName(node)) declared.add(node.text);
      else if (
        !(ts.isPropertyAccessExpression(p) && p.name === node) &&
        !(ts.isPropertyAssignment(p) && p.name === node) &&
        !(ts.isQualifiedName(p) && p.right === node) &&
        !(ts.isPropertySignature(p) && p.name === node)
      ) {
        used.add(node.text);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return { imports, body, topLevel, free: [...used].filter((n) => !declared.has(n)) };
}

/** How one ts/js block is compiled and run, or why it is only type-checked. */
export function planSnippet(block: ReadmeBlock): SnippetPlan {
  const lang = block.lang === 'js' || block.lang === 'javascript' ? 'js' : 'ts';
  const { imports, body, topLevel, free } = analyse(block.code, lang);
  const own = new Map(imports.flatMap(importsOf).map((i) => [i.name, i] as const));
  const prose = new Map<string, NamedImport>();
  for (const statement of inlineCode(block.prose)) for (const i of importsOf(statement)) if (!prose.has(i.name)) prose.set(i.name, i);
  // The module named nearest above the snippet first ("The bindings themselves (`client/bindings/`)").
  const modules = proseModules(block.prose)
    .reverse()
    .map((file) => ({ file, names: exportsOf(file) }));
  const account: string[] = [];
  const unresolved: string[] = [];
  const fromProse: NamedImport[] = [];
  const placeholders: string[] = [];
  const cjsNames = lang === 'js' ? new Set(['require']) : new Set<string>();
  // A js block is run as CommonJS; ES imports in one would need a classification of their own.
  if (lang === 'js' && imports.length) unresolved.push('(ES module imports in a ```js block)');
  for (const name of free) {
    if (own.has(name)) continue;
    if (lang === 'js') {
      // CommonJS: what a bundler gives a module, or a global; no ES imports to add.
      if (!cjsNames.has(name) && !isGlobal(name)) unresolved.push(name);
      continue;
    }
    const proseImport = prose.get(name);
    const module = modules.find((m) => m.names.has(name));
    if (proseImport) {
      fromProse.push(proseImport);
      account.push(`${name}: imported from ${proseImport.from.replace(`${ROOT}/`, './')} (README prose)`);
    } else if (module) {
      fromProse.push({ name, from: module.file.replace(/\.ts$/, '.js') });
      account.push(`${name}: exported by ${module.file.replace(`${ROOT}/`, '')} (a module the prose names)`);
    } else if (name in PLACEHOLDERS) {
      placeholders.push(name);
      account.push(`${name}: placeholder, ${PLACEHOLDERS[name]!.what}`);
    } else if (!isGlobal(name)) {
      unresolved.push(name);
    }
  }
  if (lang === 'js') {
    account.push(
      "CommonJS for a bundler: `require` resolves from the repository root (README's `./ot-types` is the TypeScript " +
        'source, through tsx, standing in for the bundled or compiled module)',
    );
  }
  const notRunnable = placeholders.filter((n) => !PLACEHOLDERS[n]!.runnable);
  const mode = lang === 'js' || notRunnable.length === 0 ? 'run' : 'typecheck';
  if (mode === 'typecheck') {
    account.push(
      `type-checked only: it needs ${notRunnable.join(', ')} from a browser page (the bindings run in Chromium in ` +
        'test/browser/bindings-browser.test.ts, the React hooks in test/browser/react-hooks.test.ts)',
    );
  }
  const rewrittenOwn = imports.map((text) => text.replace(/from\s*'([^']+)'/, (_, s: string) => `from '${absoluteSpecifier(s)}'`));
  const header = [
    `// README.md:${block.line} (${block.heading}), generated by test/docs/readme-walkthrough.test.ts`,
    ...rewrittenOwn,
    ...groupImports(fromProse),
    ...placeholders.map((n) => PLACEHOLDERS[n]!.code),
  ];
  if (lang === 'js') {
    const source = (url: string) =>
      [
        "'use strict';",
        ...header,
        // `WebSocket` stays the snippet's own business (README takes the global or ws).
        'module.exports = function snippet(require) {',
        substituteUrl(body, url),
        `  return { ${topLevel.join(', ')} };`,
        '};',
        '',
      ].join('\n');
    return { block, mode, account, unresolved, source, bodyLine: ['', ...header].join('\n').split('\n').length + 1 };
  }
  const prelude = [
    ...header,
    `import type { SnippetConsole } from '${ROOT}/test/docs/snippet-child.js';`,
    'export default async function snippet(console: SnippetConsole): Promise<Record<string, unknown>> {',
  ].join('\n');
  const source = (url: string) => [prelude, substituteUrl(body, url), `  return { ${topLevel.join(', ')} };`, '}', ''].join('\n');
  return { block, mode, account, unresolved, source, bodyLine: prelude.split('\n').length + 1 };
}

function groupImports(list: readonly NamedImport[]): string[] {
  const byModule = new Map<string, Set<string>>();
  for (const { name, from } of list) byModule.set(from, (byModule.get(from) ?? new Set()).add(name));
  return [...byModule].map(([from, names]) => `import { ${[...names].join(', ')} } from '${from}';`);
}

/** README's server address (`http://localhost:8080`, ws:// too) → the test server's. */
function substituteUrl(code: string, url: string): string {
  const target = new URL(url);
  return code.replace(/\b(https?|wss?):\/\/(localhost|127\.0\.0\.1):8080\b/g, (_, scheme: string) => `${scheme}://${target.host}`);
}

/** Type-checks the generated ts modules in one program, with the repository's compiler options. */
export function typeCheck(files: readonly string[]): Map<string, string[]> {
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  const program = ts.createProgram([...files], { ...parsed.options, noEmit: true });
  const byFile = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const file = d.file?.fileName ?? '';
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    const message = `${file}:${line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    if (!d.file)
      for (const list of byFile.values()) list.push(message); // options: every snippet's problem
    // Errors inside the repository's own modules are `tsc -p .`'s to report (npm test runs it
    // first), not a README drift; files other engineers are editing must not fail this test.
    else byFile.get(file)?.push(message);
  }
  return byFile;
}

/**
 * A temp folder for generated modules whose bare imports (`sharedb/…`) resolve as they do in
 * the repository: its node_modules is a symlink to the repository's (Node and TypeScript both
 * follow it to the real path, so modules are the same instances).
 */
export function scratchModuleDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** Removes a scratchModuleDir: the symlink first, so nothing can reach the real node_modules. */
export function removeScratchModuleDir(dir: string): void {
  rmSync(join(dir, 'node_modules'), { force: true });
  rmSync(dir, { recursive: true, force: true });
}

/** Writes a module and the runner that calls it in a child process (node --import tsx). */
export function writeRunner(dir: string, plan: SnippetPlan, url: string): string {
  const base = `snippet-${plan.block.index}`;
  const snippetFile = join(dir, `${base}.${plan.block.lang === 'ts' ? 'mts' : 'cjs'}`);
  writeFileSync(snippetFile, plan.source(url));
  const runner = join(dir, `${base}-run.mts`);
  const lines =
    plan.block.lang === 'ts'
      ? [
          `import snippet from './${base}.mjs';`,
          `import { runSnippetChild } from '${ROOT}/test/docs/snippet-child.js';`,
          'await runSnippetChild(snippet);',
        ]
      : [
          "import { createRequire } from 'node:module';",
          `import snippet from './${base}.cjs';`,
          `import { runSnippetChild } from '${ROOT}/test/docs/snippet-child.js';`,
          `await runSnippetChild(() => snippet(createRequire('${ROOT}/package.json')));`,
        ];
  writeFileSync(runner, [...lines, ''].join('\n'));
  return runner;
}

/** Runs a runner in its own Node process; resolves with the snippet's report. */
export function runChild(runner: string, timeoutMs = 45_000): Promise<SnippetReport> {
  return new Promise((resolvePromise, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(AUTH_|TANDEM_)/.test(k)));
    const child = spawn(process.execPath, ['--import', 'tsx', runner], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`snippet run did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(REPORT_MARKER));
      if (code !== 0 || !line) {
        reject(new Error(`snippet process exited ${code} without a report\n${stdout}\n${stderr}`));
        return;
      }
      resolvePromise(JSON.parse(line.slice(REPORT_MARKER.length)) as SnippetReport);
    });
  });
}
