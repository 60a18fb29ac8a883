/**
 * Access control end to end: JWT auth, the rules file (RULES_FILE), the programmatic hook,
 * op identity (source ids bound to the user or connection) and metadata queries, over both
 * transports (stock ShareDB clients on /sharedb with `?token=`, Tandem's socket.io client
 * with the token in its handshake).
 *
 * Every refusal is checked three ways: the exact code, the store unchanged (snapshot
 * version and op count read straight from the DB adapter), and the same connection still
 * doing something it is allowed to do.
 */
import assert from 'node:assert/strict';
import type { JWTPayload } from 'jose';
import * as json1 from 'ot-json1';
import { TandemErrorCode } from '../../client/protocol.js';
import { JSON1_TYPE_URI, ops, type JSONOp, type JsonValue } from '../../ot-types/index.js';
import type { AccessRequest } from '../../server/auth/access.js';
import { sourceTagOf } from '../../server/auth/identity.js';
import type { RulesFile } from '../../server/auth/rules.js';
import {
  TRANSPORTS,
  connectClient,
  connected,
  del,
  fetchSnapshot,
  fetchSnapshotByTimestamp,
  ids,
  presenceSubmit,
  presenceSubscribe,
  queryFetch,
  querySubscribe,
  rawRequest,
  recordMessages,
  rejectsWith,
  replyCode,
  roundTrip,
  startServerWithHook,
  storedDoc,
  useRulesFile,
  type Client,
  type Message,
  type StoredDoc,
  type Transport,
} from '../helpers/access-fixtures.js';
import { AUTH_ENV, testToken } from '../helpers/auth.js';
import { create, fetchDoc, submit, subscribe, whenNothingPending } from '../helpers/clients.js';
import { useServerPerTest, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

const FORBIDDEN = TandemErrorCode.FORBIDDEN;
const FOREIGN_SOURCE = TandemErrorCode.FOREIGN_SOURCE;

/** Tenants by id prefix; editors write, owners also delete; meta is read-only. */
const RULES: RulesFile = {
  collections: {
    notes: {
      read: { idPrefixClaim: 'tenant' },
      create: { allOf: [{ idPrefixClaim: 'tenant' }, { claim: 'role', in: ['editor', 'owner'] }] },
      write: { allOf: [{ idPrefixClaim: 'tenant' }, { claim: 'role', in: ['editor', 'owner'] }] },
      delete: { allOf: [{ idPrefixClaim: 'tenant' }, { claim: 'role', equals: 'owner' }] },
      readOnlyPaths: [['meta']],
    },
    // A custom separator.
    boards: {
      read: { idPrefixClaim: 'tenant', separator: ':' },
      create: {
        allOf: [
          { idPrefixClaim: 'tenant', separator: ':' },
          { claim: 'role', in: ['editor'] },
        ],
      },
    },
    // Readable by every user as a whole (counts allowed); each user writes their own; no delete.
    profiles: { read: 'authenticated', create: { idEqualsClaim: 'sub' }, write: { idEqualsClaim: 'sub' } },
  },
};

const USERS: Record<string, JWTPayload> = {
  alice: { tenant: 'acme', role: 'editor' },
  owen: { tenant: 'acme', role: 'owner' },
  victor: { tenant: 'acme', role: 'viewer' },
  bob: { tenant: 'globex', role: 'owner' },
};

interface Plan {
  title: string;
  meta: { owner: string };
  items: unknown[];
}

const CURSOR = { path: ['title'], anchor: 1, head: 1 };

/** Store state that a refusal must leave as it was: version, type, data and every op. */
function assertUnchanged(before: StoredDoc, after: StoredDoc, what: string): void {
  assert.equal(after.v, before.v, `${what}: version changed`);
  assert.equal(after.ops.length, before.ops.length, `${what}: op count changed`);
  assert.equal(after.type, before.type, `${what}: type changed`);
  assert.deepEqual(after.data, before.data, `${what}: data changed`);
}

let nextSeq = 1_000_000;

/**
 * Submits an op message by hand (a create, op or del) with the given fields, e.g. another
 * user's `src`; resolves with the server's ack or refusal.
 */
function rawSubmit(client: Client, collection: string, id: string, fields: Message): Promise<Message> {
  const seq = nextSeq++;
  return rawRequest(
    client.connection,
    { a: 'op', c: collection, d: id, seq, ...fields },
    (m) => m.a === 'op' && m.c === collection && m.d === id && m.seq === seq,
  );
}

function handshake(client: Client, id: string): Promise<Message> {
  return rawRequest(client.connection, { a: 'hs', id, protocol: 1, protocolMinor: 2 }, (m) => m.a === 'hs');
}

/** Per-test clients: a token per user, connected and closed after the test. */
function clientsFor(getServer: () => TestServer, closers: Array<() => Promise<void>>) {
  return async (sub: string, transport: Transport, claims: JWTPayload | undefined = USERS[sub]): Promise<Client> => {
    const token = await testToken(sub, { claims });
    const client = connectClient(getServer().url, transport, token);
    closers.push(async () => client.close());
    await connected(client.connection);
    return client;
  };
}

describe('auth access: rules enforced on both transports', function () {
  const rulesFile = useRulesFile(RULES);

  for (const transport of TRANSPORTS) {
    describe(`over ${transport}`, function () {
      const ctx = useServerPerTest({ ...AUTH_ENV, RULES_FILE: rulesFile });
      const as = clientsFor(() => ctx.server, ctx.closers);
      let owen: Client;
      let bob: Client;

      // acme/plan and acme/todo (by owen), globex/secret (by bob, at version 2).
      beforeEach(async () => {
        owen = await as('owen', transport);
        bob = await as('bob', transport);
        for (const id of ['acme/plan', 'acme/todo']) {
          await create(owen.connection.get('notes', id), { title: id.slice(5), meta: { owner: 'owen' }, items: [] });
        }
        const secret = bob.connection.get('notes', 'globex/secret');
        await create(secret, { title: 'secret', meta: { owner: 'bob' }, items: [] });
        await submit(secret, ops.insert(['items', 0], 'classified'));
      });

      it('a document outside the rules: fetch, subscribe and bulk reads are refused, and its ops never reach the user', async () => {
        const server = ctx.server;
        const alice = await as('alice', transport);
        const before = await storedDoc(server, 'notes', 'globex/secret');
        assert.equal(before.v, 2);

        const secret = alice.connection.get('notes', 'globex/secret');
        await rejectsWith(fetchDoc(secret), FORBIDDEN, 'fetch');
        await rejectsWith(subscribe(secret), FORBIDDEN, 'subscribe');
        assert.equal(secret.type, null);
        assert.equal(secret.data, undefined);
        // A collection the rules file does not list (and no "*").
        await rejectsWith(fetchDoc(alice.connection.get('secrets', 'acme/x')), FORBIDDEN, 'fetch of an unlisted collection');

        // Bulk fetch and subscribe: the forbidden one is refused, the readable one served.
        for (const a of ['bf', 'bs']) {
          const reply = await rawRequest(alice.connection, { a, c: 'notes', b: ['acme/plan', 'globex/secret'] }, (m) => m.a === a);
          assert.equal(replyCode(reply), undefined, `${a}: whole bulk request refused`);
          const data = reply.data as Record<string, { error?: { code?: unknown }; data?: unknown; v?: number }>;
          assert.equal(
            data['globex/secret']?.error?.code,
            FORBIDDEN,
            `${a}: forbidden doc not refused: ${JSON.stringify(data['globex/secret'])}`,
          );
          assert.equal(data['globex/secret']?.data, undefined);
          assert.deepEqual(data['acme/plan']?.data, { title: 'plan', meta: { owner: 'owen' }, items: [] });
        }
        assertUnchanged(before, await storedDoc(server, 'notes', 'globex/secret'), 'refused reads');

        // The same connection reads what it may.
        const plan = alice.connection.get('notes', 'acme/plan');
        await subscribe(plan);
        assert.equal((plan.data as Plan).title, 'plan');

        // Bob writes his document: nothing of it reaches alice (refused subscribe, refused bulk subscribe).
        const seen = recordMessages(alice.connection);
        const bobSecret = bob.connection.get('notes', 'globex/secret');
        await fetchDoc(bobSecret);
        await submit(bobSecret, ops.insert(['items', 0], 'more classified'));
        await roundTrip(alice.connection);
        seen.stop();
        const leaked = seen.messages.filter((m) => m.d === 'globex/secret' || JSON.stringify(m).includes('classified'));
        assert.deepEqual(leaked, [], 'ops of a forbidden document were sent to the user');
      });

      it('a write to a read-only path is refused; other paths of the document stay writable', async () => {
        const server = ctx.server;
        const alice = await as('alice', transport);
        const plan = alice.connection.get('notes', 'acme/plan');
        await subscribe(plan);
        const before = await storedDoc(server, 'notes', 'acme/plan');

        // Removals carry the removed value, so ShareDB's client can invert them on refusal:
        // json1 inverts a removal without it (`r: true`, as ops.replace / ops.remove build
        // them) into an insert of `true`, which would corrupt the client's copy.
        await rejectsWith(submit(plan, json1.replaceOp(['meta', 'owner'], 'owen', 'alice')), FORBIDDEN, 'replace under meta');
        await rejectsWith(submit(plan, ops.insert(['meta', 'admin'], true)), FORBIDDEN, 'insert under meta');
        await rejectsWith(submit(plan, ops.move(['meta'], ['stolen'])), FORBIDDEN, 'move meta away');
        const removeMeta: JSONOp = ['meta', { r: { owner: 'owen' } }];
        await rejectsWith(submit(plan, removeMeta), FORBIDDEN, 'remove meta');
        const whole: JsonValue = { title: 'plan', meta: { owner: 'owen' }, items: [] };
        await rejectsWith(submit(plan, json1.replaceOp([], whole, { ...whole, meta: {} })), FORBIDDEN, 'replace the whole document');
        await rejectsWith(submit(plan, ops.textInsert(['meta', 'owner'], 0, 'x')), FORBIDDEN, 'text edit under meta');
        await whenNothingPending(plan);
        assertUnchanged(before, await storedDoc(server, 'notes', 'acme/plan'), 'read-only path');
        assert.deepEqual((plan.data as Plan).meta, { owner: 'owen' }, 'client not rolled back');

        await submit(plan, ops.textInsert(['title'], 0, 'A'));
        const after = await storedDoc(server, 'notes', 'acme/plan');
        assert.equal(after.v, before.v + 1);
        assert.equal(after.ops.length, before.ops.length + 1);
        assert.deepEqual(after.data, { title: 'Aplan', meta: { owner: 'owen' }, items: [] });
        assert.equal(after.ops.at(-1)?.m?.user, 'alice');
      });

      it('a delete without the right is refused; the owner may delete', async () => {
        const server = ctx.server;
        const alice = await as('alice', transport);
        const victor = await as('victor', transport);
        const before = await storedDoc(server, 'notes', 'acme/plan');
        for (const [user, client] of [
          ['alice (editor)', alice],
          ['victor (viewer)', victor],
        ] as const) {
          const doc = client.connection.get('notes', 'acme/plan');
          await fetchDoc(doc);
          await rejectsWith(del(doc), FORBIDDEN, `delete by ${user}`);
          await whenNothingPending(doc);
          assert.equal((doc.data as Plan).title, 'plan', `${user}: client not restored`);
        }
        // Deleting another tenant's document, by hand (the client cannot even load it).
        const secretBefore = await storedDoc(server, 'notes', 'globex/secret');
        const reply = await rawSubmit(alice, 'notes', 'globex/secret', { v: secretBefore.v, del: true });
        assert.equal(replyCode(reply), FORBIDDEN);
        assertUnchanged(before, await storedDoc(server, 'notes', 'acme/plan'), 'refused delete');
        assertUnchanged(secretBefore, await storedDoc(server, 'notes', 'globex/secret'), 'refused cross-tenant delete');

        // Alice's connection still writes; owen deletes.
        const plan = alice.connection.get('notes', 'acme/plan');
        await submit(plan, ops.insert(['items', 0], 'still here'));
        assert.equal((await storedDoc(server, 'notes', 'acme/plan')).v, before.v + 1);
        const todo = owen.connection.get('notes', 'acme/todo');
        await fetchDoc(todo);
        await del(todo);
        const deleted = await storedDoc(server, 'notes', 'acme/todo');
        assert.equal(deleted.type, null);
        assert.equal(deleted.ops.at(-1)?.del, true);
        assert.equal(deleted.ops.at(-1)?.m?.user, 'owen');
      });

      it('a create without the right is refused (tenant, role, unlisted collection); an allowed one commits with m.user', async () => {
        const server = ctx.server;
        const alice = await as('alice', transport);
        const victor = await as('victor', transport);
        const empty = await storedDoc(server, 'notes', 'acme/new');
        assert.equal(empty.type, null);

        // Viewer: a role the create rule does not list (the client can read the id, so it recovers).
        const viewerDoc = victor.connection.get('notes', 'acme/new');
        await rejectsWith(create(viewerDoc, { title: 'x', meta: { owner: 'victor' }, items: [] }), FORBIDDEN, 'create by a viewer');
        await whenNothingPending(viewerDoc);
        assert.equal(viewerDoc.type, null);
        // Another tenant's id, and a collection the rules do not list: by hand, since
        // ShareDB's client would then try to re-read a document it may not read.
        for (const [collection, id] of [
          ['notes', 'globex/new'],
          ['secrets', 'acme/new'],
        ] as const) {
          const reply = await rawSubmit(alice, collection, id, { v: null, create: { type: JSON1_TYPE_URI, data: { title: 'x' } } });
          assert.equal(replyCode(reply), FORBIDDEN, `create ${collection}/${id}`);
          assertUnchanged(
            { ...empty, data: undefined },
            { ...(await storedDoc(server, collection, id)), data: undefined },
            `${collection}/${id}`,
          );
        }
        assertUnchanged(empty, await storedDoc(server, 'notes', 'acme/new'), 'refused create');

        const doc = alice.connection.get('notes', 'acme/new');
        await create(doc, { title: 'new', meta: { owner: 'alice' }, items: [] });
        const created = await storedDoc(server, 'notes', 'acme/new');
        assert.equal(created.v, 1);
        assert.equal(created.ops.length, 1);
        assert.ok(created.ops[0]?.create, 'stored op is the create');
        assert.equal(created.ops[0]?.m?.user, 'alice');
      });

      it('queries return only readable documents, also as a subscription; $count and $distinct over unreadable ones are refused', async () => {
        const server = ctx.server;
        const alice = await as('alice', transport);
        const secretBefore = await storedDoc(server, 'notes', 'globex/secret');

        assert.deepEqual(ids((await queryFetch(alice.connection, 'notes', {})).docs), ['acme/plan', 'acme/todo']);
        assert.deepEqual(ids((await queryFetch(alice.connection, 'notes', { title: 'secret' })).docs), []);
        assert.deepEqual(ids((await queryFetch(alice.connection, 'notes', { items: 'classified' })).docs), []);
        await rejectsWith(queryFetch(alice.connection, 'notes', { $count: true }), FORBIDDEN, '$count');
        await rejectsWith(queryFetch(alice.connection, 'notes', { title: 'secret', $count: true }), FORBIDDEN, '$count with a filter');
        await rejectsWith(queryFetch(alice.connection, 'notes', { $distinct: { field: 'title' } }), FORBIDDEN, '$distinct');
        await rejectsWith(querySubscribe(alice.connection, 'notes', { $count: true }), FORBIDDEN, 'subscribed $count');
        assertUnchanged(secretBefore, await storedDoc(server, 'notes', 'globex/secret'), 'queries');

        // A live query: bob's new matching document never shows up, owen's does.
        const seen = recordMessages(alice.connection);
        const live = await querySubscribe(alice.connection, 'notes', {});
        assert.deepEqual(ids(live.results), ['acme/plan', 'acme/todo']);
        await create(bob.connection.get('notes', 'globex/fresh'), { title: 'fresh', meta: { owner: 'bob' }, items: ['classified'] });
        await create(owen.connection.get('notes', 'acme/fresh'), { title: 'fresh', meta: { owner: 'owen' }, items: [] });
        await waitFor(() => ids(live.results).includes('acme/fresh'), { what: 'acme/fresh in the live query' });
        await roundTrip(alice.connection);
        seen.stop();
        assert.deepEqual(ids(live.results), ['acme/fresh', 'acme/plan', 'acme/todo']);
        assert.ok(!JSON.stringify(seen.messages).includes('globex'), 'the live query told alice about a globex document');
        live.destroy();

        // A collection every user reads whole: counting is allowed there.
        await create(alice.connection.get('profiles', 'alice'), { name: 'Alice' });
        await create(bob.connection.get('profiles', 'bob'), { name: 'Bob' });
        assert.equal((await queryFetch(alice.connection, 'profiles', { $count: true })).extra, 2);
        assert.deepEqual(ids((await queryFetch(alice.connection, 'profiles', {})).docs), ['alice', 'bob']);
      });

      it("presence on a document the user cannot read is refused, and a permitted user's presence never reaches them", async () => {
        const server = ctx.server;
        const alice = await as('alice', transport);
        const bob2 = await as('bob', transport);
        const channel = 'notes.acme/plan';
        const before = await storedDoc(server, 'notes', 'acme/plan');
        const bobSeen = [recordMessages(bob.connection), recordMessages(bob2.connection)];

        // Subscribing to the document's presence.
        await rejectsWith(presenceSubscribe(bob.connection.getDocPresence('notes', 'acme/plan')), FORBIDDEN, 'presence subscribe');
        // Sending on the channel (ShareDB's channel presence needs no loaded document).
        await rejectsWith(presenceSubmit(bob2.connection.getPresence(channel).create('bob-cursor'), CURSOR), FORBIDDEN, 'presence send');
        // Document presence sent by hand: on the document's channel, and on bob's own channel naming alice's document.
        for (const ch of [channel, 'notes.globex/secret']) {
          const reply = await rawRequest(
            bob.connection,
            { a: 'p', ch, id: `raw-${ch}`, p: CURSOR, pv: 1, c: 'notes', d: 'acme/plan', v: before.v, t: JSON1_TYPE_URI },
            (m) => m.a === 'p' && m.id === `raw-${ch}`,
          );
          assert.equal(replyCode(reply), FORBIDDEN, `doc presence on ${ch}`);
        }
        assertUnchanged(before, await storedDoc(server, 'notes', 'acme/plan'), 'presence');

        // Alice's presence reaches owen (permitted), never bob.
        const owenPlan = owen.connection.get('notes', 'acme/plan');
        await subscribe(owenPlan);
        const owenPresence = owen.connection.getDocPresence('notes', 'acme/plan');
        await presenceSubscribe(owenPresence);
        const plan = alice.connection.get('notes', 'acme/plan');
        await subscribe(plan);
        const alicePresence = alice.connection.getDocPresence('notes', 'acme/plan');
        await presenceSubscribe(alicePresence);
        await presenceSubmit(alicePresence.create('alice-cursor'), CURSOR);
        await waitFor(() => owenPresence.remotePresences['alice-cursor'], { what: "alice's presence at owen" });
        assert.deepEqual(owenPresence.remotePresences['alice-cursor'], CURSOR);
        await Promise.all([roundTrip(bob.connection), roundTrip(bob2.connection)]);
        for (const seen of bobSeen) {
          seen.stop();
          const delivered = seen.messages.filter((m) => (m.a === 'p' || m.a === 'pr') && m.ch === channel && m.error === undefined);
          assert.deepEqual(delivered, [], 'presence of a forbidden document reached bob');
          assert.ok(!JSON.stringify(seen.messages).includes('alice-cursor'));
        }

        // Bob's connections still do presence where they may.
        const own = bob.connection.getDocPresence('notes', 'globex/secret');
        await presenceSubscribe(own);
        await presenceSubscribe(bob2.connection.getPresence('notes.globex/secret'));
      });

      it("an op under another user's source id, or a handshake taking another user's id, is refused with TANDEM_FOREIGN_SOURCE", async () => {
        const server = ctx.server;
        const alice = await as('alice', transport);
        const aliceTag = sourceTagOf('alice');
        const bobId = bob.connection.id!;
        assert.ok(alice.connection.id!.startsWith(`${aliceTag}.`), `server-assigned id ${alice.connection.id} lacks the user's tag`);
        assert.ok(bobId.startsWith(`${sourceTagOf('bob')}.`));
        const before = await storedDoc(server, 'notes', 'acme/plan');
        const op = ops.textInsert(['title'], 0, 'X');

        for (const src of [bobId, `${sourceTagOf('bob')}.forged`, aliceTag, `${aliceTag}.`, 'plain-id']) {
          const reply = await rawSubmit(alice, 'notes', 'acme/plan', { v: before.v, src, op });
          assert.equal(replyCode(reply), FOREIGN_SOURCE, `op with src ${src}`);
        }
        const hs = await handshake(alice, bobId);
        assert.equal(replyCode(hs), FOREIGN_SOURCE, "handshake with bob's id");
        assertUnchanged(before, await storedDoc(server, 'notes', 'acme/plan'), 'forged sources');

        // A source id of her own choosing under her tag is fine; so is her client's own.
        const mine = `${aliceTag}.resumed-run`;
        const ack = await rawSubmit(alice, 'notes', 'acme/plan', { v: before.v, src: mine, op });
        assert.equal(replyCode(ack), undefined, `own-tag src refused: ${JSON.stringify(ack.error)}`);
        const plan = alice.connection.get('notes', 'acme/plan');
        await subscribe(plan);
        await submit(plan, ops.insert(['items', 0], 1));
        const after = await storedDoc(server, 'notes', 'acme/plan');
        assert.equal(after.v, before.v + 2);
        const [first, second] = after.ops.slice(-2);
        assert.equal(first?.src, mine);
        // The refused handshake left the connection's id alone.
        assert.equal(second?.src, alice.connection.id);
        assert.deepEqual([first?.m?.user, second?.m?.user], ['alice', 'alice']);
        assert.equal((after.data as Plan).title, 'Xplan');
      });

      it('fetchSnapshot at a version (and by timestamp) of a forbidden document is refused', async () => {
        const server = ctx.server;
        const alice = await as('alice', transport);
        const before = await storedDoc(server, 'notes', 'globex/secret');
        await rejectsWith(fetchSnapshot(alice.connection, 'notes', 'globex/secret', 1), FORBIDDEN, 'snapshot at v1');
        await rejectsWith(fetchSnapshot(alice.connection, 'notes', 'globex/secret', null), FORBIDDEN, 'latest snapshot');
        await rejectsWith(fetchSnapshotByTimestamp(alice.connection, 'notes', 'globex/secret', Date.now()), FORBIDDEN, 'snapshot by time');
        // Fetching ops since a version (a fetch with a version goes through the op log).
        const ops0 = await rawRequest(
          alice.connection,
          { a: 'f', c: 'notes', d: 'globex/secret', v: 0 },
          (m) => m.a === 'f' && m.d === 'globex/secret',
        );
        assert.equal(replyCode(ops0), FORBIDDEN, `ops since v0: ${JSON.stringify(ops0).slice(0, 200)}`);
        assertUnchanged(before, await storedDoc(server, 'notes', 'globex/secret'), 'snapshot reads');

        const snapshot = await fetchSnapshot(alice.connection, 'notes', 'acme/plan', 1);
        assert.equal(snapshot.v, 1);
        assert.deepEqual(snapshot.data, { title: 'plan', meta: { owner: 'owen' }, items: [] });
      });
    });
  }
});

describe('auth access: tenant prefix and claim rules', function () {
  const rulesFile = useRulesFile(RULES);
  const ctx = useServerPerTest({ ...AUTH_ENV, RULES_FILE: rulesFile });
  const as = clientsFor(() => ctx.server, ctx.closers);

  async function tryCreate(client: Client, collection: string, id: string): Promise<unknown> {
    const reply = await rawSubmit(client, collection, id, {
      v: null,
      create: { type: JSON1_TYPE_URI, data: { title: id, meta: { owner: 'x' } } },
    });
    return replyCode(reply);
  }

  it('{idPrefixClaim: "tenant"}: the id must be the tenant, the separator, then anything', async () => {
    const server = ctx.server;
    const alice = await as('alice', 'stock');
    for (const id of ['acme', 'acmecorp/1', 'acme-corp/1', 'globex/1', 'ACME/1', 'x/acme/1']) {
      assert.equal(await tryCreate(alice, 'notes', id), FORBIDDEN, `create notes/${id}`);
      assert.equal((await storedDoc(server, 'notes', id)).ops.length, 0);
    }
    assert.equal(await tryCreate(alice, 'notes', 'acme/1'), undefined);
    assert.equal(await tryCreate(alice, 'notes', 'acme/deep/path'), undefined);
    // A custom separator.
    assert.equal(await tryCreate(alice, 'boards', 'acme/1'), FORBIDDEN);
    assert.equal(await tryCreate(alice, 'boards', 'acme:1'), undefined);

    // Several tenants in one token (an array claim): each prefix works.
    const both = await as('multi', 'stock', { tenant: ['acme', 'globex'], role: 'editor' });
    await fetchDoc(both.connection.get('notes', 'acme/1'));
    assert.equal(await tryCreate(both, 'notes', 'globex/2'), undefined);
    // No tenant claim, or an empty one: nothing.
    for (const [sub, claims] of [
      ['nobody', { role: 'editor' }],
      ['empty', { tenant: '', role: 'editor' }],
    ] as const) {
      const client = await as(sub, 'stock', claims);
      await rejectsWith(fetchDoc(client.connection.get('notes', 'acme/1')), FORBIDDEN, `${sub}: read`);
      assert.equal(await tryCreate(client, 'notes', '/1'), FORBIDDEN, `${sub}: create /1`);
      // Still usable: profiles are readable by every user.
      await fetchDoc(client.connection.get('profiles', 'alice'));
    }
  });

  it('{claim: "role", in: ["editor"]}: the claim (or one element of an array claim) must be listed, exactly', async () => {
    const server = ctx.server;
    const owen = await as('owen', 'stock');
    await create(owen.connection.get('notes', 'acme/doc'), { title: '', meta: { owner: 'owen' } });
    const cases: Array<[string, JWTPayload, boolean]> = [
      ['editor', { tenant: 'acme', role: 'editor' }, true],
      ['array', { tenant: 'acme', role: ['viewer', 'editor'] }, true],
      ['viewer', { tenant: 'acme', role: 'viewer' }, false],
      ['capital', { tenant: 'acme', role: 'Editor' }, false],
      ['norole', { tenant: 'acme' }, false],
      ['numeric', { tenant: 'acme', role: 1 }, false],
    ];
    for (const [sub, claims, allowed] of cases) {
      const client = await as(sub, sub === 'array' ? 'socket.io' : 'stock', claims);
      const doc = client.connection.get('notes', 'acme/doc');
      await subscribe(doc);
      const before = await storedDoc(server, 'notes', 'acme/doc');
      const write = submit(doc, ops.textInsert(['title'], 0, sub[0]!));
      if (allowed) {
        await write;
        assert.equal((await storedDoc(server, 'notes', 'acme/doc')).ops.at(-1)?.m?.user, sub);
      } else {
        await rejectsWith(write, FORBIDDEN, `${sub}: write`);
        await whenNothingPending(doc);
        assertUnchanged(before, await storedDoc(server, 'notes', 'acme/doc'), sub);
        // Reading is still fine for them.
        await fetchDoc(client.connection.get('notes', 'acme/doc'));
      }
    }
    // {claim: "role", equals: "owner"} for delete.
    const bobAcme = await as('bob-acme', 'stock', { tenant: 'acme', role: ['owner'] });
    const doc = bobAcme.connection.get('notes', 'acme/doc');
    await fetchDoc(doc);
    await del(doc);
    assert.equal((await storedDoc(server, 'notes', 'acme/doc')).type, null);
  });

  it('{idEqualsClaim: "sub"}: a user writes only the profile named after them; an action the rules leave out is refused', async () => {
    const server = ctx.server;
    const alice = await as('alice', 'socket.io');
    assert.equal(await tryCreate(alice, 'profiles', 'bob'), FORBIDDEN);
    assert.equal((await storedDoc(server, 'profiles', 'bob')).ops.length, 0);
    const mine = alice.connection.get('profiles', 'alice');
    await create(mine, { name: 'A' });
    await submit(mine, ops.replace(['name'], 'Alice'));
    // No delete rule for profiles: refused even for the owner.
    const before = await storedDoc(server, 'profiles', 'alice');
    await rejectsWith(del(mine), FORBIDDEN, 'delete without a rule');
    await whenNothingPending(mine);
    assertUnchanged(before, await storedDoc(server, 'profiles', 'alice'), 'delete without a rule');
    assert.deepEqual(mine.data, { name: 'Alice' });
  });
});

describe('auth access: authentication without a rules file', function () {
  const ctx = useServerPerTest({ ...AUTH_ENV });
  const as = clientsFor(() => ctx.server, ctx.closers);

  it('every user reads, writes, deletes and counts everything; each op records its user', async () => {
    const server = ctx.server;
    const alice = await as('alice', 'stock', {});
    const bob = await as('bob', 'socket.io', {});
    const carol = await as('carol', 'stock', { role: 'viewer' });
    const a = alice.connection.get('anything', 'no-prefix');
    await create(a, { title: 'a', meta: { owner: 'alice' } });
    const b = bob.connection.get('anything', 'no-prefix');
    await subscribe(b);
    await submit(b, ops.replace(['meta', 'owner'], 'bob'));
    assert.equal((await queryFetch(carol.connection, 'anything', { $count: true })).extra, 1);
    assert.deepEqual(ids((await queryFetch(carol.connection, 'anything', {})).docs), ['no-prefix']);
    const presence = carol.connection.getPresence('lobby');
    await presenceSubscribe(presence);
    const c = carol.connection.get('anything', 'no-prefix');
    await fetchDoc(c);
    assert.deepEqual(c.data, { title: 'a', meta: { owner: 'bob' } });
    await del(c);
    const stored = await storedDoc(server, 'anything', 'no-prefix');
    assert.equal(stored.type, null);
    assert.deepEqual(
      stored.ops.map((op) => op.m?.user),
      ['alice', 'bob', 'carol'],
    );
  });
});

describe('auth access: the programmatic hook', function () {
  let server: TestServer | null = null;
  const closers: Array<() => Promise<void>> = [];
  const requests: AccessRequest[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await server?.close();
    server = null;
    requests.length = 0;
  });
  const as = clientsFor(() => server!, closers);

  /** Refuses locking a document, reads by mallory, and throws for the id "boom". */
  const hook = (request: AccessRequest): boolean => {
    requests.push(structuredClone(request));
    if (request.id === 'boom') throw new Error('hook failure');
    if (request.action === 'read' && request.identity?.sub === 'mallory') return false;
    return (request.after as { locked?: unknown } | undefined)?.locked !== true;
  };

  it('sees identity, collection, id, action, op, before and after, and refuses a write by its result', async () => {
    server = await startServerWithHook({ ...AUTH_ENV }, hook);
    const alice = await as('alice', 'stock', { role: 'editor' });
    const bob = await as('bob', 'socket.io', {});
    const mallory = await as('mallory', 'socket.io', {});
    const doc = alice.connection.get('notes', 'h1');
    await create(doc, { title: 't', locked: false });
    const createRequest = requests.find((r) => r.action === 'create');
    assert.ok(createRequest, 'hook not asked about the create');
    assert.equal(createRequest.identity?.sub, 'alice');
    assert.equal(createRequest.identity?.claims.role, 'editor');
    assert.equal(createRequest.collection, 'notes');
    assert.equal(createRequest.id, 'h1');
    assert.deepEqual(createRequest.op, { type: JSON1_TYPE_URI, data: { title: 't', locked: false } });
    assert.equal(createRequest.before, undefined);
    assert.deepEqual(createRequest.after, { title: 't', locked: false });

    requests.length = 0;
    const edit = ops.textInsert(['title'], 0, 'X');
    await submit(doc, edit);
    const write = requests.find((r) => r.action === 'write');
    assert.ok(write, 'hook not asked about the write');
    assert.equal(write.identity?.sub, 'alice');
    assert.deepEqual(write.op, edit);
    assert.deepEqual(write.before, { title: 't', locked: false });
    assert.deepEqual(write.after, { title: 'Xt', locked: false });

    // Refused by content after the op.
    const before = await storedDoc(server, 'notes', 'h1');
    await rejectsWith(submit(doc, json1.replaceOp(['locked'], false, true)), FORBIDDEN, 'locking write');
    await whenNothingPending(doc);
    assertUnchanged(before, await storedDoc(server, 'notes', 'h1'), 'hook refusal');
    assert.deepEqual(doc.data, { title: 'Xt', locked: false });
    // A hook that throws refuses.
    const boomBefore = await storedDoc(server, 'notes', 'boom');
    const boom = await rawSubmit(alice, 'notes', 'boom', { v: null, create: { type: JSON1_TYPE_URI, data: {} } });
    assert.equal(replyCode(boom), FORBIDDEN);
    assertUnchanged(boomBefore, await storedDoc(server, 'notes', 'boom'), 'throwing hook');
    // The same connection writes on.
    await submit(doc, ops.textInsert(['title'], 0, 'Y'));
    assert.deepEqual((await storedDoc(server, 'notes', 'h1')).data, { title: 'YXt', locked: false });

    // Reads: asked with the document; refused for mallory.
    requests.length = 0;
    const bobDoc = bob.connection.get('notes', 'h1');
    await fetchDoc(bobDoc);
    const read = requests.find((r) => r.action === 'read');
    assert.equal(read?.identity?.sub, 'bob');
    assert.deepEqual(read?.before, { title: 'YXt', locked: false });
    await rejectsWith(fetchDoc(mallory.connection.get('notes', 'h1')), FORBIDDEN, "mallory's read");
    await rejectsWith(queryFetch(bob.connection, 'notes', { $count: true }), FORBIDDEN, '$count with a hook');
    assert.deepEqual(ids((await queryFetch(mallory.connection, 'notes', {})).docs), []);
    assert.deepEqual(ids((await queryFetch(bob.connection, 'notes', {})).docs), ['h1']);

    // Delete: before, no after, op true.
    requests.length = 0;
    await del(bobDoc);
    const deletion = requests.find((r) => r.action === 'delete');
    assert.equal(deletion?.identity?.sub, 'bob');
    assert.equal(deletion?.op, true);
    assert.deepEqual(deletion?.before, { title: 'YXt', locked: false });
    assert.equal(deletion?.after, undefined);
    assert.deepEqual(
      (await storedDoc(server, 'notes', 'h1')).ops.map((op) => op.m?.user),
      ['alice', 'alice', 'alice', 'bob'],
    );
  });
});

describe('auth access: anonymous connections (no auth)', function () {
  const ctx = useServerPerTest();

  function anonymous(transport: Transport, sourceKey?: string): Client {
    const client = connectClient(ctx.server.url, transport, null, sourceKey);
    ctx.closers.push(async () => client.close());
    return client;
  }

  /** Retries an op under `src` from `client` until the server takes it (refusals must be FOREIGN_SOURCE). */
  async function eventuallyAccepted(client: Client, collection: string, id: string, src: string): Promise<void> {
    await waitFor(
      async () => {
        const { v } = await storedDoc(ctx.server, collection, id);
        const reply = await rawSubmit(client, collection, id, { v, src, op: ops.add(['n'], 1) });
        if (replyCode(reply) === undefined) return true;
        assert.equal(replyCode(reply), FOREIGN_SOURCE);
        return false;
      },
      { what: `op with src ${src} accepted` },
    );
  }

  it("a second live connection using the first's source id is refused until the first closes", async () => {
    const server = ctx.server;
    const first = anonymous('stock');
    const second = anonymous('stock');
    await Promise.all([connected(first.connection), connected(second.connection)]);
    const firstId = first.connection.id!;
    const doc = first.connection.get('notes', 'anon');
    await create(doc, { n: 0 });
    await submit(doc, ops.add(['n'], 1));
    const before = await storedDoc(server, 'notes', 'anon');

    const forged = await rawSubmit(second, 'notes', 'anon', { v: before.v, src: firstId, op: ops.add(['n'], 100) });
    assert.equal(replyCode(forged), FOREIGN_SOURCE);
    assert.equal(replyCode(await handshake(second, firstId)), FOREIGN_SOURCE);
    assertUnchanged(before, await storedDoc(server, 'notes', 'anon'), 'foreign source');
    // The second connection writes under its own id.
    const own = second.connection.get('notes', 'anon');
    await subscribe(own);
    await submit(own, ops.add(['n'], 10));
    assert.deepEqual((await storedDoc(server, 'notes', 'anon')).data, { n: 11 });

    first.close();
    await eventuallyAccepted(second, 'notes', 'anon', firstId);
    const after = await storedDoc(server, 'notes', 'anon');
    assert.equal(after.ops.at(-1)?.src, firstId);
    assert.equal(after.ops.at(-1)?.m?.user, undefined, 'anonymous ops record no user');
    assert.deepEqual(after.data, { n: 12 });
  });

  it('socket.io connections with the same handshake sourceKey share source ids; another client waits until all of them closed', async () => {
    const key = 'run-key-0123456789abcdef';
    const first = anonymous('socket.io', key);
    const sibling = anonymous('socket.io', key);
    const stranger = anonymous('socket.io', 'other-key-0123456789abcdef');
    await Promise.all([first, sibling, stranger].map((c) => connected(c.connection)));
    const firstId = first.connection.id!;
    await create(first.connection.get('notes', 'keyed'), { n: 0 });
    const { v } = await storedDoc(ctx.server, 'notes', 'keyed');
    assert.equal(replyCode(await rawSubmit(sibling, 'notes', 'keyed', { v, src: firstId, op: ops.add(['n'], 1) })), undefined);
    const before = await storedDoc(ctx.server, 'notes', 'keyed');
    assert.equal(
      replyCode(await rawSubmit(stranger, 'notes', 'keyed', { v: before.v, src: firstId, op: ops.add(['n'], 1) })),
      FOREIGN_SOURCE,
    );
    first.close();
    // The sibling (same key) still holds it.
    await waitFor(() => ctx.server.io.engine.clientsCount === 2, { what: 'first socket gone' });
    assert.equal(
      replyCode(await rawSubmit(stranger, 'notes', 'keyed', { v: before.v, src: firstId, op: ops.add(['n'], 1) })),
      FOREIGN_SOURCE,
    );
    assertUnchanged(before, await storedDoc(ctx.server, 'notes', 'keyed'), 'held by the sibling');
    sibling.close();
    await eventuallyAccepted(stranger, 'notes', 'keyed', firstId);
    assert.deepEqual((await storedDoc(ctx.server, 'notes', 'keyed')).data, { n: 2 });
  });

  for (const transport of TRANSPORTS) {
    it(`queries naming metadata (_m) are refused over ${transport}; others run`, async () => {
      const client = anonymous(transport);
      await connected(client.connection);
      await create(client.connection.get('notes', 'm1'), { title: 'm' });
      const refused: unknown[] = [
        { '_m.mtime': { $gt: 0 } },
        { _m: { $exists: true } },
        { $sort: { '_m.ctime': 1 } },
        { $or: [{ title: 'm' }, { '_m.ctime': { $gt: 0 } }] },
        { $expr: { $gt: ['$_m.mtime', 0] } },
        { $distinct: { field: '_m.mtime' } },
      ];
      for (const query of refused) {
        await rejectsWith(queryFetch(client.connection, 'notes', query), FORBIDDEN, `fetch ${JSON.stringify(query)}`);
        await rejectsWith(querySubscribe(client.connection, 'notes', query), FORBIDDEN, `subscribe ${JSON.stringify(query)}`);
      }
      assert.deepEqual(ids((await queryFetch(client.connection, 'notes', { title: 'm' })).docs), ['m1']);
      assert.equal((await queryFetch(client.connection, 'notes', { $count: true })).extra, 1);
    });
  }
});

describe('auth access: metadata queries with auth', function () {
  const ctx = useServerPerTest({ ...AUTH_ENV });
  const as = clientsFor(() => ctx.server, ctx.closers);

  it('are refused for an authenticated user too', async () => {
    const alice = await as('alice', 'socket.io', {});
    await create(alice.connection.get('notes', 'm1'), { title: 'm' });
    await rejectsWith(queryFetch(alice.connection, 'notes', { '_m.mtime': { $gt: 0 } }), FORBIDDEN, '_m query');
    assert.deepEqual(ids((await queryFetch(alice.connection, 'notes', {})).docs), ['m1']);
  });
});

describe('auth access: leaks closed after review', function () {
  const rulesFile = useRulesFile(RULES);

  for (const transport of TRANSPORTS) {
    describe(`over ${transport}`, function () {
      const ctx = useServerPerTest({ ...AUTH_ENV, RULES_FILE: rulesFile, AUTH_TIMEOUT_MS: '1000' });
      const as = clientsFor(() => ctx.server, ctx.closers);

      beforeEach(async () => {
        const owen = await as('owen', transport);
        const bob = await as('bob', transport);
        await create(owen.connection.get('notes', 'acme/known'), { title: 'known', meta: { owner: 'owen' }, items: [] });
        await create(owen.connection.get('notes', 'acme/v1.2'), { title: 'dotted', meta: { owner: 'owen' }, items: [] });
        await create(bob.connection.get('notes', 'globex/payroll'), {
          title: 'payroll',
          meta: { owner: 'bob' },
          items: [],
          salary: '100k',
        } as unknown as JsonValue);
      });

      it('paging ($limit, $skip) over documents the user cannot all read is refused: it would reveal them', async () => {
        const alice = await as('alice', transport);
        // Whether acme/known made the page would tell whether globex/payroll matches.
        const probe = { $or: [{ _id: 'acme/known' }, { salary: '100k' }], $sort: { _id: -1 }, $limit: 1 };
        await rejectsWith(queryFetch(alice.connection, 'notes', probe), FORBIDDEN, '$limit');
        await rejectsWith(queryFetch(alice.connection, 'notes', { $skip: 1 }), FORBIDDEN, '$skip');
        await rejectsWith(querySubscribe(alice.connection, 'notes', { $limit: 5 }), FORBIDDEN, 'subscribed $limit');
        // Sorting alone reveals nothing beyond the readable documents; paging where every
        // document is readable is allowed.
        assert.deepEqual(ids((await queryFetch(alice.connection, 'notes', { $sort: { _id: 1 } })).docs), ['acme/known', 'acme/v1.2']);
        const profile = alice.connection.get('profiles', 'alice');
        await create(profile, { name: 'Alice' });
        assert.deepEqual(ids((await queryFetch(alice.connection, 'profiles', { $limit: 1 })).docs), ['alice']);
      });

      it('metadata stays hidden behind $$ROOT / $$CURRENT references', async () => {
        const alice = await as('alice', transport);
        for (const query of [
          { $expr: { $gt: ['$$ROOT._m.mtime', 0] } },
          { $expr: { $gt: ['$$CURRENT._m.ctime', 0] } },
          { $expr: { $eq: ['$$ROOT', {}] } },
        ]) {
          await rejectsWith(queryFetch(alice.connection, 'notes', query), FORBIDDEN, JSON.stringify(query));
        }
        // Ordinary $expr still works.
        assert.deepEqual(ids((await queryFetch(alice.connection, 'notes', { $expr: { $eq: ['$title', 'known'] } })).docs), ['acme/known']);
      });

      it('presence: a request to re-send (pr) on a forbidden channel is refused; a readable id with dots is allowed', async () => {
        const alice = await as('alice', transport);
        const refused = await rawRequest(
          alice.connection,
          { a: 'pr', ch: 'notes.globex/payroll' },
          (m) => m.a === 'pr' && m.ch === 'notes.globex/payroll',
        );
        assert.equal(replyCode(refused), FORBIDDEN);
        const allowed = await rawRequest(
          alice.connection,
          { a: 'ps', ch: 'notes.acme/v1.2', seq: 1 },
          (m) => m.a === 'ps' && m.ch === 'notes.acme/v1.2',
        );
        assert.equal(replyCode(allowed), undefined);
        // Collections cannot contain dots, so a channel names one document.
        await rejectsWith(fetchDoc(alice.connection.get('notes.acme', 'v1.2')), 'ERR_MESSAGE_BADLY_FORMED', 'dotted collection');
      });

      it('a refused removal without its value is not inverted into `true`: the client reloads the document', async () => {
        const alice = await as('alice', transport);
        const known = alice.connection.get('notes', 'acme/known');
        await subscribe(known);
        await rejectsWith(submit(known, ops.replace(['meta', 'owner'], 'alice')), FORBIDDEN, 'replace under meta');
        await waitFor(() => (known.data as Plan | undefined)?.meta?.owner === 'owen' && !known.hasWritePending(), {
          what: 'the reloaded document',
        });
        await submit(known, ops.replace(['title'], 'still writable'));
        assert.equal(((await storedDoc(ctx.server, 'notes', 'acme/known')).data as Plan).title, 'still writable');
      });

      it('after its token expired a connection gets no more ops, and is closed once AUTH_TIMEOUT_MS passed', async () => {
        const expiring = connectClient(ctx.server.url, transport, await testToken('alice', { claims: USERS.alice, ttlSeconds: 2 }));
        ctx.closers.push(async () => expiring.close());
        await connected(expiring.connection);
        const watcher = await as('victor', transport);
        const known = expiring.connection.get('notes', 'acme/known');
        await subscribe(known);
        const watched = watcher.connection.get('notes', 'acme/known');
        await subscribe(watched);
        const expiresAt = Date.now() + 2_000;
        const seen = recordMessages(expiring.connection);
        await waitFor(() => Date.now() > expiresAt + 50, { timeoutMs: 5_000, what: 'the token to expire' });
        const owen = await as('owen', transport);
        const doc = owen.connection.get('notes', 'acme/known');
        await fetchDoc(doc);
        await submit(doc, ops.replace(['title'], 'after expiry'));
        // The watcher, on the same server, got the op: the expired connection would have too.
        await waitFor(() => (watched.data as Plan).title === 'after expiry', { what: 'the watcher to see the op' });
        seen.stop();
        assert.deepEqual(
          seen.messages.filter((m) => m.a === 'op'),
          [],
          'an op reached an expired connection',
        );
        await waitFor(() => expiring.connection.state !== 'connected', {
          timeoutMs: 5_000,
          what: 'the server to close the expired connection',
        });
      });
    });
  }

  describe('server-side connections', function () {
    const ctx = useServerPerTest({ ...AUTH_ENV, RULES_FILE: rulesFile });

    it('are the application itself: rules do not apply to backend.connect()', async () => {
      const connection = ctx.server.backend.connect();
      try {
        const doc = connection.get('notes', 'globex/internal');
        await create(doc, { title: 'made by the server', meta: {}, items: [] });
        await submit(doc, ops.replace(['meta'], { owner: 'server' }));
        const other = connection.get('secrets', 'anything');
        await create(other, { ok: true });
        assert.deepEqual(ids((await queryFetch(connection, 'notes', { $limit: 10 })).docs), ['globex/internal']);
      } finally {
        connection.close();
      }
    });
  });
});
