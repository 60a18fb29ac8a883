/**
 * The README walkthrough: README.md is read at test time, and every fenced block in it is
 * either run as written (in a scratch environment: free ports, temp data paths, our own
 * secrets) or skipped with a printed reason. Blocks are recognised by their content and the
 * heading they sit under; a block (or a shell line) nothing here recognises fails the
 * walkthrough, so a new README snippet has to be classified before the suite passes again.
 *
 * What is substituted is printed per block: README's `localhost:8080` / `:8080` become the
 * test's free ports on 127.0.0.1, its default store ./data/tandem.db a temp file, a public
 * HOST the loopback address, and the load tool's 20 s runs are shortened.
 */
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRules, type Rule } from '../../server/auth/rules.js';
import { TEST_JWT_SECRET, testToken } from '../helpers/auth.js';
import { tokenStockClient } from '../helpers/auth-wire.js';
import { create } from '../helpers/clients.js';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.js';
import { serverSnapshot } from '../helpers/sdk-clients.js';
import { startTestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { blockName, fencedBlocks, readReadme, ROOT, type ReadmeBlock } from './readme-blocks.js';
import { planLine, type LinePlan } from './shell-lines.js';
import { ShellSession, shellLines, type ShellLine } from './shell-session.js';
import { planSnippet, removeScratchModuleDir, runChild, scratchModuleDir, typeCheck, writeRunner, type SnippetPlan } from './snippets.js';

/** Printed under the test's title (mocha's spec reporter indents tests by six). */
function say(message: string): void {
  console.log(`        ${message.replace(/\n/g, '\n        ')}`);
}

type Plan =
  | { kind: 'shell'; block: ReadmeBlock; lines: Array<{ line: ShellLine; plan: LinePlan | null }> }
  | { kind: 'snippet'; block: ReadmeBlock; snippet: SnippetPlan }
  | { kind: 'rules'; block: ReadmeBlock }
  | { kind: 'delegated'; block: ReadmeBlock; reason: string }
  | { kind: 'unknown'; block: ReadmeBlock; reason: string };

const EMBED_TEST = 'test/browser/readme-embed.test.ts';

/** The heading whose ```html blocks test/browser/readme-embed.test.ts runs in Chromium. */
function embedTestHeading(): string | null {
  let text: string;
  try {
    text = readFileSync(join(ROOT, EMBED_TEST), 'utf8');
  } catch {
    return null;
  }
  return /indexOf\('#+ ([^']+)'\)/.exec(text)?.[1] ?? null;
}

function classify(block: ReadmeBlock): Plan {
  switch (block.lang) {
    case 'sh':
    case 'bash':
    case 'shell': {
      const lines = shellLines(block.code).map((line) => ({ line, plan: planLine(line, block) }));
      const unknown = lines.filter((l) => l.plan === null);
      if (unknown.length) {
        return {
          kind: 'unknown',
          block,
          reason: `shell lines no rule in test/docs/shell-lines.ts handles: ${unknown.map((l) => `\`${l.line.text}\``).join(', ')}`,
        };
      }
      return { kind: 'shell', block, lines };
    }
    case 'ts':
    case 'typescript':
    case 'js':
    case 'javascript': {
      const snippet = planSnippet(block);
      if (snippet.unresolved.length) {
        return {
          kind: 'unknown',
          block,
          reason: `names nothing provides: ${snippet.unresolved.join(', ')} (import them in README, or give them a placeholder in test/docs/snippets.ts)`,
        };
      }
      return { kind: 'snippet', block, snippet };
    }
    case 'json':
      // Configuration examples: the rules file is the only JSON README shows.
      if (/"collections"\s*:/.test(block.code)) return { kind: 'rules', block };
      return { kind: 'unknown', block, reason: 'a JSON block that is not a rules file (RULES_FILE)' };
    case 'html':
      if (embedTestHeading() === block.heading) {
        return {
          kind: 'delegated',
          block,
          reason: `not run here: ${EMBED_TEST} runs the \`\`\`html blocks under "${block.heading}" verbatim in Chromium (server URL replaced)`,
        };
      }
      return {
        kind: 'unknown',
        block,
        reason: `an html block outside "${embedTestHeading() ?? '(no embed test)'}", which ${EMBED_TEST} does not run`,
      };
    default:
      return { kind: 'unknown', block, reason: `no handler for \`\`\`${block.lang || '(no language)'} blocks` };
  }
}

function summary(plan: Plan): string {
  switch (plan.kind) {
    case 'shell': {
      const counts = new Map<string, number>();
      for (const { plan: p } of plan.lines) counts.set(p!.handling, (counts.get(p!.handling) ?? 0) + 1);
      return [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
    }
    case 'snippet':
      return plan.snippet.mode === 'run' ? (plan.block.lang === 'ts' ? 'type-checked and run' : 'run') : 'type-checked only';
    case 'rules':
      return 'parsed by checkRules, served with';
    case 'delegated':
      return 'run by the browser embed test';
    case 'unknown':
      return 'UNCLASSIFIED';
  }
}

async function runShell(plan: Extract<Plan, { kind: 'shell' }>, mocha: Mocha.Context): Promise<void> {
  const session = await ShellSession.open(plan.block.code);
  // Started on first need (a line naming a local Redis, or instances the block leaves out).
  const own: { redis: TestRedis | null } = { redis: null };
  try {
    for (const { line, plan: linePlan } of plan.lines) {
      const where = `README.md:${plan.block.line + 1 + line.offset}`;
      say(`${linePlan!.handling}: ${line.text.trim()}\n  ${linePlan!.how}`);
      try {
        await linePlan!.run({
          session,
          line,
          block: plan.block,
          mocha,
          log: (m) => say(`  → ${m}`),
          redis: async () => (own.redis ??= await startTestRedis()),
        });
      } catch (err) {
        // mocha's skip (a missing service) is not an Error and passes through untouched.
        if (err instanceof Error) err.message = `${where} \`${line.text.trim()}\`: ${err.message}`;
        throw err;
      }
    }
    // What the block left running (`… &`): stopped as a supervisor does; README: it exits 0.
    for (const server of [...session.servers]) {
      const code = await session.terminate(server);
      assert.equal(code, 0, `\`${server.command}\` exit status after SIGTERM\n${server.output()}`);
      say(`stopped ${server.url} with SIGTERM: exit ${code}`);
    }
    if (plan.lines.some((l) => l.plan!.handling !== 'skipped')) say(`substituted: ${[...session.substitutions].join('; ')}`);
  } finally {
    await session.close();
    await own.redis?.destroy();
  }
}

/** The type checker's findings per generated module, computed once for all ts snippets. */
let typeChecked: { dir: string; files: Map<number, string>; diagnostics: Map<string, string[]> } | null = null;

function typeCheckAll(plans: readonly Plan[]): NonNullable<typeof typeChecked> {
  if (typeChecked) return typeChecked;
  const dir = scratchModuleDir('tandem-readme-ts-');
  const files = new Map<number, string>();
  for (const plan of plans) {
    if (plan.kind !== 'snippet' || plan.block.lang !== 'ts') continue;
    const file = join(dir, `snippet-${plan.block.index}.mts`);
    // Type-checked as written (README's own server URL).
    writeFileSync(file, plan.snippet.source('http://localhost:8080'));
    files.set(plan.block.index, file);
  }
  typeChecked = { dir, files, diagnostics: typeCheck([...files.values()]) };
  return typeChecked;
}

async function runSnippet(plan: Extract<Plan, { kind: 'snippet' }>, all: readonly Plan[]): Promise<void> {
  const { snippet, block } = plan;
  for (const line of snippet.account) say(line);
  if (block.lang === 'ts') {
    const checked = typeCheckAll(all);
    const file = checked.files.get(block.index)!;
    const problems = (checked.diagnostics.get(file) ?? []).map((d) =>
      d.replace(/^(.*?):(\d+): /, (_, f: string, l: string) =>
        f === file && Number(l) >= snippet.bodyLine ? `README.md:${block.line + 1 + Number(l) - snippet.bodyLine}: ` : `${f}:${l}: `,
      ),
    );
    assert.deepEqual(problems, [], `the snippet does not type-check (generated module ${file})`);
    say('type-check: no errors');
  }
  if (snippet.mode !== 'run') return;
  const server = await startTestServer();
  const dir = scratchModuleDir('tandem-readme-run-');
  try {
    const report = await runChild(writeRunner(dir, snippet, server.url));
    say(`substituted: http://localhost:8080 → ${server.url}`);
    assert.equal(report.error, null, `the snippet failed: ${report.error}\nconsole:\n${report.console.join('\n')}`);
    for (const [name, local] of Object.entries(report.locals)) {
      switch (local.kind) {
        case 'client':
          assert.equal(local.state, 'online', `${name} went online`);
          say(`ran: ${name} online`);
          break;
        case 'doc': {
          assert.equal(local.pendingCount, 0, `${name}: nothing pending after whenSynced`);
          const onServer = await serverSnapshot(server, local.collection, local.id);
          assert.deepEqual(onServer.data, local.data, `${name}: the server has what the client shows`);
          assert.equal(onServer.v, local.version, `${name}: same version`);
          say(`ran: ${name} = ${local.collection}/${local.id} ${JSON.stringify(local.data)}, the same on the server (v${onServer.v})`);
          break;
        }
        case 'connection':
          assert.equal(local.state, 'connected', `${name} connected`);
          assert.equal(local.createdWith, 'json1', `${name} creates json1 documents`);
          say(`ran: ${name} connected and created a json1 document`);
          break;
        case 'other':
          break;
      }
    }
    if (report.console.length) say(`its console: ${report.console.join(' | ')}`);
  } finally {
    removeScratchModuleDir(dir);
    await server.close();
  }
}

/** A claim value a `{claim, in}` / `{claim, equals}` rule accepts, if the rule is one of those. */
function satisfying(rule: Rule | undefined): { claim: string; value: unknown } | null {
  if (typeof rule !== 'object' || rule === null) return null;
  if ('claim' in rule && 'in' in rule && Array.isArray(rule.in) && rule.in.length) return { claim: rule.claim, value: rule.in[0] };
  if ('claim' in rule && 'equals' in rule) return { claim: rule.claim, value: rule.equals };
  return null;
}

async function runRules(plan: Extract<Plan, { kind: 'rules' }>): Promise<void> {
  const rules = checkRules(JSON.parse(plan.block.code));
  say(`checkRules: ${Object.keys(rules.collections).length} collections (${Object.keys(rules.collections).join(', ')})`);
  const dir = mkdtempSync(join(tmpdir(), 'tandem-readme-rules-'));
  const file = join(dir, 'rules.json');
  writeFileSync(file, plan.block.code);
  const server = await startTestServer({ AUTH_JWT_SECRET: TEST_JWT_SECRET, RULES_FILE: file });
  const closers: Array<() => Promise<void>> = [];
  try {
    say(`served with: RULES_FILE=<the block> AUTH_JWT_SECRET=<test secret> on ${server.url}`);
    const tryCreate = async (claims: Record<string, unknown>, collection: string, id: string): Promise<string> => {
      const client = tokenStockClient(server.url, { bearer: await testToken('readme-user', { claims }) });
      closers.push(() => client.close());
      await waitFor(() => client.connection.state === 'connected', { what: 'the stock client to connect' });
      const doc = client.connection.get(collection, id);
      // A refused create is also emitted as 'error' (ShareDB's rollback cannot fetch an unreadable doc).
      doc.on('error', () => undefined);
      try {
        await create(doc, { title: '' });
        return 'created';
      } catch (err) {
        return String((err as { code?: unknown }).code);
      }
    };
    // README: "with a rules file, an unnamed collection … is refused".
    if (!('*' in rules.collections)) {
      assert.equal(await tryCreate({}, 'readme_unnamed', 'x'), 'TANDEM_FORBIDDEN', 'a collection the file does not name');
      say('a collection the file does not name: create refused (TANDEM_FORBIDDEN)');
    }
    for (const [collection, rule] of Object.entries(rules.collections)) {
      const needed = satisfying(rule.create);
      if (collection === '*' || !needed) continue;
      assert.equal(
        await tryCreate({ [needed.claim]: needed.value }, collection, 'with-claim'),
        'created',
        `${collection}: create with ${needed.claim}=${JSON.stringify(needed.value)}`,
      );
      assert.equal(await tryCreate({}, collection, 'without-claim'), 'TANDEM_FORBIDDEN', `${collection}: create without ${needed.claim}`);
      say(`${collection}: create allowed with ${needed.claim}=${JSON.stringify(needed.value)}, refused without (TANDEM_FORBIDDEN)`);
    }
  } finally {
    for (const close of closers.reverse()) await close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('README walkthrough: every fenced block is run as written or skipped with a reason', function () {
  const blocks = fencedBlocks(readReadme());
  const plans = blocks.map(classify);

  after(() => {
    if (typeChecked) removeScratchModuleDir(typeChecked.dir);
    typeChecked = null;
  });

  it(`every one of README's ${blocks.length} fenced blocks is classified`, () => {
    const unknown = plans.filter((p): p is Extract<Plan, { kind: 'unknown' }> => p.kind === 'unknown');
    assert.deepEqual(
      unknown.map((p) => `${blockName(p.block)}: ${p.reason}`),
      [],
      'README blocks the walkthrough does not know how to run or skip: classify them in test/docs/',
    );
  });

  for (const plan of plans) {
    it(`${blockName(plan.block)}: ${summary(plan)}`, async function () {
      switch (plan.kind) {
        case 'unknown':
          throw new Error(`unclassified README block: ${plan.reason}`);
        case 'delegated':
          say(plan.reason);
          return;
        case 'shell':
          this.timeout(150_000);
          await runShell(plan, this);
          return;
        case 'snippet':
          this.timeout(60_000);
          await runSnippet(plan, plans);
          return;
        case 'rules':
          this.timeout(30_000);
          await runRules(plan);
          return;
      }
    });
  }
});
