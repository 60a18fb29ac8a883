/**
 * `tandem doc get|history|submit|restore|delete` (server/cli/doc-command.ts) as a user runs
 * it: a `tandem` process against a server with authentication and access rules. The answers
 * are the HTTP API's; refusals print the code and exit 1.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { TandemErrorCode } from '../../client/protocol.js';
import type { RulesFile } from '../../server/auth/rules.js';
import { useRulesFile } from '../helpers/access-fixtures.js';
import { AUTH_ENV, testToken } from '../helpers/auth.js';
import { useServerPerTest } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI (as users run it): a process starts in a fraction of the time tsx takes. */
const BIN = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function tandem(args: string[], env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

function json(run: Run): Record<string, unknown> {
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

const RULES: RulesFile = {
  collections: {
    notes: {
      read: 'authenticated',
      create: { claim: 'role', equals: 'editor' },
      write: { claim: 'role', equals: 'editor' },
      delete: { claim: 'role', equals: 'editor' },
    },
  },
};

describe('tandem doc: the HTTP API from the command line', function () {
  this.timeout(60_000);
  const rulesFile = useRulesFile(RULES);
  const ctx = useServerPerTest({ ...AUTH_ENV, RULES_FILE: rulesFile });
  before(function () {
    this.timeout(120_000);
    execFileSync(process.execPath, ['scripts/build.mjs', '--if-needed'], { cwd: ROOT, stdio: 'ignore' });
  });

  it('creates, edits, reads now and at a version, pages the history, restores and deletes; refusals exit 1 with their code', async () => {
    const editor = { SERVER_URL: ctx.server.url, AUTH_TOKEN: await testToken('ed', { claims: { role: 'editor' } }) };
    const reader = { SERVER_URL: ctx.server.url, AUTH_TOKEN: await testToken('rita', { claims: { role: 'reader' } }) };
    const id = 'shopping list';
    assert.equal(json(await tandem(['doc', 'submit', 'notes', id, '--create', '{"items":[]}'], editor)).v, 1);
    const key = ['--idempotency-key', 'add-milk'];
    assert.deepEqual(json(await tandem(['doc', 'submit', 'notes', id, '["items",0,{"i":"milk"}]', ...key], editor)).duplicate, false);
    const [again, eggs] = await Promise.all([
      tandem(['doc', 'submit', 'notes', id, '["items",0,{"i":"milk"}]', ...key], editor),
      tandem(['doc', 'submit', 'notes', id, '["items",1,{"i":"eggs"}]'], editor),
    ]);
    assert.equal(json(again).duplicate, true, 'a retried command applies once');
    assert.equal(json(eggs).duplicate, false);
    // Independent commands run side by side (each is a Node process compiling TypeScript).
    const [now, atTwo, page] = await Promise.all([
      tandem(['doc', 'get', 'notes', id], reader),
      tandem(['doc', 'get', 'notes', id, '--v', '2'], reader),
      tandem(['doc', 'history', 'notes', id, '--from', '1', '--limit', '1'], reader),
    ]);
    assert.deepEqual(json(now).data, { items: ['milk', 'eggs'] });
    assert.deepEqual(json(atTwo).data, { items: ['milk'] });
    const history = json(page);
    assert.deepEqual(
      (history.ops as Array<Record<string, unknown>>).map((op) => [op.v, op.user]),
      [[1, 'ed']],
    );
    assert.equal(history.next, 2);
    assert.equal(json(await tandem(['doc', 'restore', 'notes', id, '1'], editor)).v, 4);
    assert.deepEqual(json(await tandem(['doc', 'get', 'notes', id], reader)).data, { items: [] });

    const [refused, anonymous, badOp] = await Promise.all([
      tandem(['doc', 'delete', 'notes', id], reader),
      tandem(['doc', 'get', 'notes', id], { SERVER_URL: ctx.server.url, AUTH_TOKEN: '' }),
      tandem(['doc', 'submit', 'notes', id, '[items'], editor),
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`^tandem: ${TandemErrorCode.FORBIDDEN}: `));
    assert.match(anonymous.stderr, new RegExp(`^tandem: ${TandemErrorCode.UNAUTHENTICATED}: `));
    assert.match(badOp.stderr, new RegExp(`^tandem: ${TandemErrorCode.BAD_CONFIG}: the op must be JSON`));
    assert.equal(json(await tandem(['doc', 'delete', 'notes', id], editor)).v, 5);
    const gone = await tandem(['doc', 'get', 'notes', id], reader);
    assert.deepEqual([gone.code, gone.stderr.startsWith('tandem: ERR_DOC_DOES_NOT_EXIST: ')], [1, true]);
  });
});
