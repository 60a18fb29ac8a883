/**
 * The HTTP API (server/http-api/): documents, history, server-side submit with an
 * Idempotency-Key, restore and delete over `/api/v1`, run through the same pipeline as the
 * socket transports: the tests check the answers against a replay of the op log and against
 * what subscribed clients receive, and that the access rules and limits refuse over HTTP with
 * the same codes as over the sockets.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as json1 from 'ot-json1';
import { ShareDbErrorCode, TandemErrorCode } from '../../client/protocol.js';
import { MAX_PAGE } from '../../server/http-api/doc-requests.js';
import type { RulesFile } from '../../server/auth/rules.js';
import { useRulesFile } from '../helpers/access-fixtures.js';
import { AUTH_ENV, testToken } from '../helpers/auth.js';
import { create, stockClient, subscribe, submit, type Doc } from '../helpers/clients.js';
import { redisServerAvailable, startTestRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestServer, useServerPerTest, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import { waitFor } from '../helpers/wait.js';
import { cursorAt, joinPresence, openClient, submitPresence } from '../resilience/presence-clients.js';

type Json = Record<string, unknown>;

interface Answer {
  status: number;
  body: Json;
  headers: Headers;
}

async function api(
  server: { url: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${server.url}/api/v1/${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
}

function codeOf(answer: Answer): unknown {
  return (answer.body.error as { code?: unknown } | undefined)?.code;
}

/** Every op of a document through the paged ops route. */
async function allOps(server: { url: string }, path: string, page = MAX_PAGE): Promise<Json[]> {
  const ops: Json[] = [];
  let from: unknown = 0;
  while (from !== null) {
    const answer = await api(server, 'GET', `${path}/ops?from=${String(from)}&limit=${page}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    ops.push(...(answer.body.ops as Json[]));
    from = answer.body.next;
  }
  return ops;
}

/** The document the ops build up to and including version `v` (or up to time `ts`). */
function replay(ops: readonly Json[], until: { v: number } | { ts: number }): unknown {
  let data: unknown;
  for (const op of ops) {
    if ('v' in until ? (op.v as number) >= until.v : (op.time as number) > until.ts) break;
    if (op.create) data = (op.create as { data: unknown }).data;
    else if (op.del) data = undefined;
    else data = json1.type.apply(data as json1.Doc, op.op as json1.JSONOp);
  }
  return data;
}

describe('HTTP API: documents and history', function () {
  this.timeout(60_000);
  const ctx = useServerPerTest({ OPS_PER_MINUTE: '1000000', MILESTONE_INTERVAL: '100' });

  it('creates, reads, edits, lists, pages and deletes a document', async () => {
    const created = await api(ctx.server, 'POST', 'docs/notes/a/ops', { create: { data: { title: 'A', items: [] } } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body, { collection: 'notes', id: 'a', v: 1, duplicate: false });
    const edited = await api(ctx.server, 'POST', 'docs/notes/a/ops', { op: ['items', 0, { i: 'one' }] });
    assert.deepEqual([edited.status, edited.body.v], [200, 2]);
    const read = await api(ctx.server, 'GET', 'docs/notes/a');
    assert.equal(read.status, 200);
    assert.deepEqual(read.body.data, { title: 'A', items: ['one'] });
    assert.equal(read.body.v, 2);
    assert.deepEqual((await api(ctx.server, 'GET', 'docs/notes/a?v=1')).body.data, { title: 'A', items: [] });

    for (const id of ['b', 'c', 'd']) await api(ctx.server, 'POST', `docs/notes/${id}/ops`, { create: { data: { title: id } } });
    const page1 = await api(ctx.server, 'GET', 'docs/notes?limit=3');
    assert.deepEqual(page1.body.docs, [
      { id: 'a', v: 2 },
      { id: 'b', v: 1 },
      { id: 'c', v: 1 },
    ]);
    assert.equal(page1.body.next, 'c');
    const page2 = await api(ctx.server, 'GET', 'docs/notes?limit=3&after=c');
    assert.deepEqual([page2.body.docs, page2.body.next], [[{ id: 'd', v: 1 }], null]);

    const deleted = await api(ctx.server, 'DELETE', 'docs/notes/b');
    assert.deepEqual([deleted.status, deleted.body.v], [200, 2]);
    const gone = await api(ctx.server, 'GET', 'docs/notes/b');
    assert.deepEqual([gone.status, codeOf(gone), gone.body.v], [404, ShareDbErrorCode.DOC_DOES_NOT_EXIST, 2]);
    assert.deepEqual((await api(ctx.server, 'GET', 'docs/notes/b?v=1')).body.data, { title: 'b' }, 'the history keeps it');
    assert.deepEqual(
      (await api(ctx.server, 'GET', 'docs/notes?limit=10')).body.docs,
      [
        { id: 'a', v: 2 },
        { id: 'c', v: 1 },
        { id: 'd', v: 1 },
      ],
      'deleted documents are not listed',
    );
    assert.equal((await api(ctx.server, 'GET', 'docs/notes/never')).status, 404);
  });

  it('after 2,000 ops, snapshots at 10 versions and 3 timestamps equal a replay of the paged op log', async () => {
    const app = ctx.server.backend.connect();
    const doc = app.get('notes', 'long');
    await new Promise<void>((resolve, reject) => doc.create({ n: 0, log: [] }, 'json1', (err) => (err ? reject(err) : resolve())));
    const marks: number[] = [];
    for (let i = 1; i < 2000; i++) {
      const op = i % 3 === 0 ? ['log', 0, { i: `entry ${i}` }] : ['n', { ena: i }];
      await new Promise<void>((resolve, reject) => doc.submitOp(op, {}, (err) => (err ? reject(err) : resolve())));
      if (i % 600 === 0) {
        // A timestamp strictly between two ops' times.
        const start = Date.now();
        await waitFor(() => Date.now() > start, { what: 'the clock to move' });
        marks.push(Date.now());
        await waitFor(() => Date.now() > marks[marks.length - 1]!, { what: 'the clock to move' });
      }
    }
    assert.equal(doc.version, 2000);
    const ops = await allOps(ctx.server, 'docs/notes/long', 300);
    assert.deepEqual(
      ops.map((op) => op.v),
      Array.from({ length: 2000 }, (_, v) => v),
    );
    assert.ok(ops.every((op) => typeof op.time === 'number' && typeof op.src === 'string'));
    for (const v of [1, 2, 99, 100, 101, 777, 1000, 1501, 1999, 2000]) {
      const at = await api(ctx.server, 'GET', `docs/notes/long?v=${v}`);
      assert.equal(at.status, 200, JSON.stringify(at.body));
      assert.equal(at.body.v, v);
      assert.deepEqual(at.body.data, replay(ops, { v }), `version ${v}`);
    }
    assert.equal(marks.length, 3);
    for (const [i, ts] of marks.entries()) {
      const query = i === 1 ? new Date(ts).toISOString() : String(ts);
      const at = await api(ctx.server, 'GET', `docs/notes/long?at=${encodeURIComponent(query)}`);
      assert.equal(at.status, 200, JSON.stringify(at.body));
      assert.equal(at.body.v, 600 * (i + 1) + 1, `the version at mark ${i}`);
      assert.deepEqual(at.body.data, replay(ops, { ts }), `at ${query}`);
    }
  });

  it('restore: the document as it was, as one op every subscribed client receives; the history keeps every version', async () => {
    const stock = stockClient(ctx.server.url);
    ctx.closers.push(async () => stock.close());
    const watched = stock.connection.get('notes', 'r');
    await create(watched, { title: 'v1', items: [] });
    await submit(watched, ['title', { r: true, i: 'v2' }]);
    await submit(watched, ['items', 0, { i: 'x' }]);
    await subscribe(watched);
    const received: unknown[] = [];
    watched.on('op', (op: unknown, source: unknown) => {
      if (!source) received.push(op);
    });
    const restored = await api(ctx.server, 'POST', 'docs/notes/r/restore', { v: 2 });
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    assert.deepEqual([restored.body.v, restored.body.restoredFrom], [4, 2]);
    await waitFor(() => watched.version === 4, { what: 'the restore at the subscriber' });
    assert.equal(received.length, 1, 'one ordinary op');
    assert.deepEqual(watched.data, { title: 'v2', items: [] });
    assert.deepEqual((await api(ctx.server, 'GET', 'docs/notes/r?v=3')).body.data, { title: 'v2', items: ['x'] }, 'v3 is still there');
    assert.equal((await allOps(ctx.server, 'docs/notes/r')).length, 4);
    const bad = await api(ctx.server, 'POST', 'docs/notes/r/restore', { v: 'two' });
    assert.deepEqual([bad.status, codeOf(bad)], [400, TandemErrorCode.BAD_REQUEST]);
  });

  it('an Idempotency-Key applies once: a retry, and five concurrent sends, answer with the same version', async () => {
    await api(ctx.server, 'POST', 'docs/notes/i/ops', { create: { data: { n: 0 } } });
    const key = { 'idempotency-key': 'order-42' };
    const first = await api(ctx.server, 'POST', 'docs/notes/i/ops', { op: ['n', { ena: 1 }] }, key);
    assert.deepEqual([first.status, first.body.v, first.body.duplicate], [200, 2, false]);
    const retry = await api(ctx.server, 'POST', 'docs/notes/i/ops', { op: ['n', { ena: 1 }] }, key);
    assert.deepEqual([retry.status, retry.body.v, retry.body.duplicate], [200, 2, true]);
    const burst = await Promise.all(
      Array.from({ length: 5 }, () =>
        api(ctx.server, 'POST', 'docs/notes/i/ops', { op: ['n', { ena: 1 }] }, { 'idempotency-key': 'order-43' }),
      ),
    );
    assert.ok(
      burst.every((a) => a.status === 200),
      JSON.stringify(burst.map((a) => a.body)),
    );
    assert.equal(burst.filter((a) => a.body.duplicate === false).length, 1, 'applied once');
    assert.deepEqual(new Set(burst.map((a) => a.body.v)), new Set([3]));
    assert.deepEqual((await api(ctx.server, 'GET', 'docs/notes/i')).body.data, { n: 2 });
  });

  it('presence: who shows a cursor in the document now, over either transport; a cleared one is gone', async () => {
    await api(ctx.server, 'POST', 'docs/notes/p/ops', { create: { data: { text: 'hello' } } });
    const alice = await openClient(ctx.server.url, 'socket.io', ctx.closers);
    const bob = await openClient(ctx.server.url, 'sharedb', ctx.closers);
    const a = await joinPresence(alice, 'notes', 'p');
    const b = await joinPresence(bob, 'notes', 'p');
    const aliceCursor = a.presence.create('alice-cursor');
    const bobCursor = b.presence.create('bob-cursor');
    assert.equal(await submitPresence(aliceCursor, cursorAt(2, 'alice')), null);
    assert.equal(await submitPresence(bobCursor, cursorAt(4, 'bob')), null);
    // The answer is what holders re-sent within the wait: on a loaded machine a round can
    // take longer, so ask again until the condition holds (with a deadline).
    const presentNow = async () => {
      const answer = await api(ctx.server, 'GET', 'docs/notes/p/presence');
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return (answer.body.present as Json[]).sort((x, y) => String(x.id).localeCompare(String(y.id)));
    };
    const present = (await waitFor(
      async () => {
        const now = await presentNow();
        return now.length === 2 ? now : null;
      },
      { what: 'both cursors' },
    ))!;
    assert.deepEqual(
      present.map((p) => [p.id, p.connection, p.value]),
      [
        ['alice-cursor', alice.connection.id, cursorAt(2, 'alice')],
        ['bob-cursor', bob.connection.id, cursorAt(4, 'bob')],
      ],
    );
    assert.equal(await submitPresence(bobCursor, null), null);
    const one = (await waitFor(
      async () => {
        const now = await presentNow();
        return now.length === 1 ? now : null;
      },
      { what: "bob's cursor gone" },
    ))!;
    assert.deepEqual(
      one.map((p) => p.id),
      ['alice-cursor'],
    );
    assert.equal((await api(ctx.server, 'GET', 'docs/notes/p/presence?wait=9999')).status, 400, 'the wait is bounded');
    assert.equal((await api(ctx.server, 'GET', 'docs/notes/none/presence')).status, 404);
  });

  it('bad requests get a code and a status: body, path, query, id, size', async () => {
    await api(ctx.server, 'POST', 'docs/notes/e/ops', { create: { data: {} } });
    const cases: Array<[Answer, number, string]> = [
      [await api(ctx.server, 'POST', 'docs/notes/e/ops', '{not json'), 400, TandemErrorCode.BAD_REQUEST],
      [await api(ctx.server, 'POST', 'docs/notes/e/ops', { op: [], create: {} }), 400, TandemErrorCode.BAD_REQUEST],
      [await api(ctx.server, 'GET', 'docs/notes/e?v=abc'), 400, TandemErrorCode.BAD_REQUEST],
      [await api(ctx.server, 'GET', 'docs/notes/e/ops?limit=5000'), 400, TandemErrorCode.BAD_REQUEST],
      [await api(ctx.server, 'GET', 'nothing/here'), 404, TandemErrorCode.NOT_FOUND],
      [await api(ctx.server, 'PUT', 'docs/notes/e'), 404, TandemErrorCode.NOT_FOUND],
      [await api(ctx.server, 'GET', `docs/notes/${'x'.repeat(2000)}`), 400, TandemErrorCode.INVALID_ID],
      [await api(ctx.server, 'POST', 'docs/notes/e/ops', { op: ['missing', 3, { r: true }] }), 400, ShareDbErrorCode.OP_NOT_APPLIED],
      [
        await api(ctx.server, 'POST', 'docs/notes/e/ops', { op: ['t', { i: 'x'.repeat(2_000_000) }] }),
        413,
        TandemErrorCode.FRAME_TOO_LARGE,
      ],
      [await api(ctx.server, 'POST', 'docs/notes/e/ops', { op: ['n', { ena: 1 }], v: 99 }), 409, ShareDbErrorCode.VERSION_NEWER],
    ];
    for (const [answer, status, code] of cases) {
      assert.deepEqual([answer.status, codeOf(answer)], [status, code], JSON.stringify(answer.body).slice(0, 300));
    }
    assert.deepEqual((await api(ctx.server, 'GET', 'docs/notes/e')).body.v, 1, 'nothing refused was applied');
  });
});

const RULES: RulesFile = {
  collections: {
    notes: {
      read: { idPrefixClaim: 'tenant' },
      create: { allOf: [{ idPrefixClaim: 'tenant' }, { claim: 'role', in: ['editor'] }] },
      write: { allOf: [{ idPrefixClaim: 'tenant' }, { claim: 'role', in: ['editor'] }] },
      delete: { allOf: [{ idPrefixClaim: 'tenant' }, { claim: 'role', in: ['editor'] }] },
    },
  },
};

describe('HTTP API: the same authentication, access rules and limits as the sockets', function () {
  this.timeout(30_000);
  const rulesFile = useRulesFile(RULES);
  const ctx = useServerPerTest({ ...AUTH_ENV, RULES_FILE: rulesFile, OPS_PER_MINUTE: '5' });
  const bearer = async (sub: string, claims: Json) => ({ authorization: `Bearer ${await testToken(sub, { claims })}` });

  it('refuses without a token (401), outside the rules (403) and past the op rate (429 with Retry-After)', async () => {
    const editor = await bearer('ed', { tenant: 'acme', role: 'editor' });
    const reader = await bearer('rita', { tenant: 'acme', role: 'reader' });
    const stranger = await bearer('sam', { tenant: 'globex', role: 'editor' });
    const made = await api(ctx.server, 'POST', 'docs/notes/acme%2Fplan/ops', { create: { data: { t: 'x' } } }, editor);
    assert.equal(made.status, 201, JSON.stringify(made.body));

    const anonymous = await api(ctx.server, 'GET', 'docs/notes/acme%2Fplan');
    assert.deepEqual([anonymous.status, codeOf(anonymous)], [401, TandemErrorCode.UNAUTHENTICATED]);
    assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer');
    const forged = await api(ctx.server, 'GET', 'docs/notes/acme%2Fplan', undefined, { authorization: 'Bearer not.a.token' });
    assert.equal(forged.status, 401);

    assert.equal((await api(ctx.server, 'GET', 'docs/notes/acme%2Fplan', undefined, reader)).status, 200);
    for (const answer of [
      await api(ctx.server, 'GET', 'docs/notes/acme%2Fplan', undefined, stranger),
      await api(ctx.server, 'GET', 'docs/notes/acme%2Fplan/ops', undefined, stranger),
      await api(ctx.server, 'GET', 'docs/notes/acme%2Fplan?v=1', undefined, stranger),
      await api(ctx.server, 'POST', 'docs/notes/acme%2Fplan/ops', { op: ['t', { r: true, i: 'y' }] }, reader),
      await api(ctx.server, 'DELETE', 'docs/notes/acme%2Fplan', undefined, reader),
      await api(ctx.server, 'POST', 'docs/notes/acme%2Fplan/restore', { v: 1 }, stranger),
      await api(ctx.server, 'GET', 'docs/notes/acme%2Fplan/presence', undefined, stranger),
    ]) {
      assert.deepEqual([answer.status, codeOf(answer)], [403, TandemErrorCode.FORBIDDEN], JSON.stringify(answer.body));
    }
    const unchanged = await api(ctx.server, 'GET', 'docs/notes/acme%2Fplan', undefined, reader);
    assert.deepEqual([unchanged.body.v, unchanged.body.data], [1, { t: 'x' }], 'the refused writes, delete and restore changed nothing');
    const listed = await api(ctx.server, 'GET', 'docs/notes', undefined, stranger);
    assert.deepEqual(listed.body.docs, [], 'a list shows only what the caller may read');
    const own = await api(ctx.server, 'GET', 'docs/notes', undefined, reader);
    assert.deepEqual(own.body.docs, [{ id: 'acme/plan', v: 1 }]);

    let limited: Answer | null = null;
    for (let i = 0; i < 30 && limited === null; i++) {
      const answer = await api(ctx.server, 'POST', 'docs/notes/acme%2Fplan/ops', { op: ['t', { r: true, i: `t${i}` }] }, editor);
      if (answer.status !== 200) limited = answer;
    }
    assert.ok(limited, 'the op rate refused an edit');
    assert.deepEqual([limited.status, codeOf(limited)], [429, TandemErrorCode.RATE_LIMITED]);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });
});

describe('HTTP API: server-side submits under client typing on two instances', function () {
  this.timeout(60_000);
  const servers: TestServer[] = [];
  const closers: Array<() => unknown> = [];
  let redis: TestRedis | null = null;
  before(async function () {
    requireService(this, redisServerAvailable(), 'redis-server is not installed');
    redis = await startTestRedis();
  });
  after(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    for (const server of servers.splice(0).reverse()) await server.close();
    await redis?.destroy();
  });

  it('converges: every typed character and every server-side op, on both instances', async () => {
    const env = { REDIS_URL: redis!.url, OPS_PER_MINUTE: '1000000' };
    const first = await startTestServer(env);
    servers.push(first);
    const second = await startTestServer({ ...env, DB_URL: `sqlite:${join(first.dir, 'tandem.db')}` });
    servers.push(second);
    const typist = stockClient(first.url);
    const watcher = stockClient(second.url);
    closers.push(
      () => typist.close(),
      () => watcher.close(),
    );
    const typed: Doc = typist.connection.get('notes', 'shared');
    await create(typed, { text: '', log: [] });
    const watched = watcher.connection.get('notes', 'shared');
    await subscribe(watched);
    await subscribe(typed);

    const typing = (async () => {
      for (let i = 0; i < 150; i++) await submit(typed, ['text', { es: [typed.data.text.length, String(i % 10)] }]);
    })();
    const posts: Array<Promise<Answer>> = [];
    for (let i = 0; i < 40; i++) {
      posts.push(
        api(
          i % 2 ? first : second,
          'POST',
          'docs/notes/shared/ops',
          { op: ['log', 0, { i: `server ${i}` }] },
          { 'idempotency-key': `k${i}` },
        ),
      );
      if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const answers = await Promise.all(posts);
    await typing;
    assert.ok(
      answers.every((a) => a.status === 200),
      JSON.stringify(answers.map((a) => a.body)),
    );
    const version = 1 + 150 + 40;
    await waitFor(() => typed.version === version && watched.version === version, {
      timeoutMs: 20_000,
      what: `both clients at v${version}`,
    });
    assert.deepEqual(watched.data, typed.data);
    assert.equal(typed.data.text.length, 150);
    assert.equal(typed.data.log.length, 40);
    const fromHttp = await api(second, 'GET', 'docs/notes/shared');
    assert.deepEqual([fromHttp.body.v, fromHttp.body.data], [version, typed.data]);
    // Retried on the other instance: still once.
    const retried = await api(first, 'POST', 'docs/notes/shared/ops', { op: ['log', 0, { i: 'server 0' }] }, { 'idempotency-key': 'k0' });
    assert.deepEqual([retried.status, retried.body.duplicate], [200, true]);
    assert.equal((await api(first, 'GET', 'docs/notes/shared')).body.v, version);
  });
});
