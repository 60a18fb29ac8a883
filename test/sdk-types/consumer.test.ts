import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { runConsumer } from './consumer.js';

describe('sdk types: a strict consumer without casts', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.close();
  });

  it('has no casts and no any (tsc checks it under strict as part of npm test)', () => {
    const source = readFileSync(new URL('./consumer.ts', import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => !/^\s*(\/\/|\/\*|\*)/.test(line))
      .join('\n');
    assert.doesNotMatch(source, /\bas\s+(?!const\b)[A-Za-z{[(]/, 'no `as` casts');
    assert.doesNotMatch(source, /(?:[=(,:]|return)\s*<[A-Za-z][\w.<>[\]]*>\s*[\w(]/, 'no angle-bracket casts');
    assert.doesNotMatch(source, /\bany\b/, 'no any');
    assert.doesNotMatch(source, /!\./, 'no non-null assertions');
  });

  it('runs against a server with the results its types promise', async () => {
    const result = await runConsumer(server.url);
    assert.equal(result.title, '> Weekly Groceries');
    assert.equal(result.todoCount, 1);
    assert.deepEqual(result.errors, ['TANDEM_INVALID_OP']);
    assert.ok(result.ops.every((s) => s === 'local'));
    assert.equal(result.caretAfterTyping, 2, 'our own typing moves our caret');
    assert.deepEqual(result.states.slice(0, 2), ['connecting', 'online']);
  });
});
