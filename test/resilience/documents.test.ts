/**
 * What a document may hold.
 *
 * - Size (MAX_DOC_BYTES): the size check is exact (it equals re-encoding, on random json1
 *   ops) and proportional to the op (it never encodes what the op does not touch); an op or
 *   create past the limit is refused with TANDEM_DOC_TOO_LARGE, to the byte.
 * - The attack of the issue (a document grown op by op with 250 KB ops to 50 MB, after which
 *   each 10-byte op took 2–2.7 s and a fetch returned 50 MB), on both transports, against a
 *   server in its own process with MAX_DOC_BYTES=4 MiB: growth stops at the limit, small ops
 *   stay fast, a fetch returns at most the limit; /healthz answers within 1 s, RSS stays
 *   under RSS_BOUND_BYTES, a bystander keeps committing.
 * - Ids: collection names and document ids that are not well-formed Unicode ("\ud800",
 *   "\udc00", which the store would merge with "\ufffd") or longer than MAX_ID_LENGTH are
 *   refused with TANDEM_INVALID_ID before they reach the store, in every message that
 *   names them (fetch, subscribe, op, bulk, query, presence).
 * - Keys: "__proto__" (lost on the next edit), "toString", "hasOwnProperty"… (json1 cannot
 *   insert them) and strings with lone surrogates are refused with TANDEM_INVALID_OP, naming
 *   the key, in creates and ops, over the stock client, the raw wire and the SDK.
 */
import assert from 'node:assert/strict';
import type { JSONOp } from 'ot-json1';
import { ops, TandemError, TandemErrorCode, type OpRejection } from '../../client/index.js';
import { tandemJson1 } from '../../ot-types/index.js';
import { jsonBytes, opSizeDelta } from '../../server/limits/doc-size.js';
import { create, fetchDoc, stockClient, submit } from '../helpers/clients.js';
import { useServerProcessPerTest } from '../helpers/process-server.js';
import { sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { useServerPerTest } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { OpGenerator, Rng, initialDoc, pickFocus, type Json as GenJson } from '../fuzz/gen-op.js';
import { JSON1_URI, TRANSPORTS, WireClient, type Json } from '../integration/bad-input-wire.js';
import { bystander, openAttack, watchHealth } from './limits-watch.js';

/** The documented bound for the growth attack: the server process stays under 400 MB of RSS. */
const RSS_BOUND_BYTES = 400 * 1024 * 1024;
const T = 'notes';

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

/** A value whose encoding is counted: JSON.stringify calls `toJSON`. */
function watched(value: object, counter: { n: number }): object {
  return Object.assign(Object.create(null) as object, value, {
    toJSON() {
      counter.n++;
      return value;
    },
  });
}

describe('resilience: documents', function () {
  this.timeout(60_000);

  describe('the size of an op', () => {
    it('equals re-encoding the document, on random json1 ops (seeded)', () => {
      let checked = 0;
      for (let seed = 1; seed <= 120; seed++) {
        const rng = new Rng(seed);
        const gen = new OpGenerator(rng, { maxNodes: 100, maxDepth: 5 });
        let doc: GenJson = initialDoc(rng);
        for (let k = 0; k < 25; k++) {
          // Runs of ops composed into one: moves out of removed subtrees, edits inside moved ones…
          let op: JSONOp = null;
          let cursor = doc;
          for (let part = rng.range(1, 4); part > 0; part--) {
            const generated = gen.generate(cursor, { focus: pickFocus(rng, cursor), composeChance: 0.4 });
            op = tandemJson1.compose(op, generated.op);
            cursor = generated.after;
          }
          const after = tandemJson1.apply(structuredClone(doc) as never, op) as GenJson;
          const expected = jsonBytes(after) - jsonBytes(doc);
          assert.equal(opSizeDelta(doc, op), expected, `seed ${seed} op ${k}: ${JSON.stringify(op)} on ${JSON.stringify(doc)}`);
          doc = after;
          checked++;
        }
      }
      assert.equal(checked, 3000);
    });

    it('never encodes what the op does not touch, nor a value it moves', () => {
      const untouched = { n: 0 };
      const moved = { n: 0 };
      const doc = {
        big: watched({ text: 'x'.repeat(100_000) }, untouched),
        list: [watched({ payload: 'y'.repeat(100_000) }, moved), 1, 2],
        deep: { a: { b: { c: 'hello', sibling: watched({ more: 'z'.repeat(100_000) }, untouched) } } },
        n: 9,
      };
      assert.equal(opSizeDelta(doc, ops.textInsert(['deep', 'a', 'b', 'c'], 5, ' world')), 6);
      assert.equal(opSizeDelta(doc, ops.move(['list', 0], ['moved'])), '"moved":'.length - 0);
      // A comma and "é": 'é' is two bytes of UTF-8.
      assert.equal(opSizeDelta(doc, ops.insert(['list', 3], 'é')), 5);
      assert.equal(opSizeDelta(doc, ops.add(['n'], 1)), 1);
      assert.equal(opSizeDelta(doc, ops.remove(['deep', 'a', 'b', 'c'])), -',"c":"hello"'.length);
      assert.deepEqual([untouched.n, moved.n], [0, 0]);
    });
  });

  describe('MAX_DOC_BYTES=1048576, to the byte', () => {
    const LIMIT = 1_048_576;
    const fixture = useServerPerTest({ MAX_DOC_BYTES: String(LIMIT) });
    const { closers } = fixture;

    for (const transport of TRANSPORTS) {
      it(`over ${transport}: ops are accepted up to exactly the limit and refused past it; shrinking is allowed`, async () => {
        const client = await WireClient.open(transport, fixture.server.url);
        closers.push(() => client.close());
        await client.handshake();
        await client.create(T, 'full', { s: '' });
        let v = 1;
        const edit = async (op: unknown): Promise<string> => {
          const reply = await client.submit({ c: T, d: 'full', v, op });
          if (reply.error) return reply.error.code;
          v++;
          return 'ack';
        };
        const start = jsonBytes({ s: '' });
        for (let i = 0; i < 5; i++) assert.equal(await edit(ops.textInsert(['s'], 0, 'a'.repeat(200_000))), 'ack');
        // Non-ASCII counts as its UTF-8 bytes: 'é' is two.
        const room = LIMIT - start - 1_000_000;
        assert.equal(await edit(ops.textInsert(['s'], 0, 'é'.repeat(room / 2))), 'ack');
        assert.equal(await edit(ops.textInsert(['s'], 0, 'b')), TandemErrorCode.DOC_TOO_LARGE);
        assert.equal(await edit(['t', { i: 1 }]), TandemErrorCode.DOC_TOO_LARGE);
        const atLimit = await serverSnapshot(fixture.server, T, 'full');
        assert.equal(jsonBytes(atLimit.data), LIMIT);
        assert.equal(await edit(ops.textDelete(['s'], 0, 5)), 'ack', 'an op that shrinks the document (five é, ten bytes)');
        assert.equal(await edit(ops.textInsert(['s'], 0, '0123456789')), 'ack', 'and back to the limit');
        const refused = await client.submit({ c: T, d: 'full', v, op: ops.textInsert(['s'], 0, 'c') });
        assert.equal(refused.error.code, TandemErrorCode.DOC_TOO_LARGE);
        assert.match(refused.error.message, /would be 1048577 bytes.*limit is 1048576/);
        const final = await serverSnapshot(fixture.server, T, 'full');
        assert.equal(jsonBytes(final.data), LIMIT);
        assert.equal(final.v, v);
      });
    }

    it('the SDK reports an op past the limit as rejected and rolls it back; the document stays usable', async () => {
      const client = sdkClient(fixture.server.url, closers);
      const doc = client.doc<{ s: string; n: number }>(T, 'sdk-full', { create: { s: 'a'.repeat(200_000), n: 1 }, composeOps: false });
      await doc.ready;
      for (let i = 0; i < 4; i++) doc.submit(ops.textInsert(['s'], 0, 'b'.repeat(200_000)));
      await doc.whenSynced();
      const rejected: OpRejection[] = [];
      doc.on('rejected', (r) => rejected.push(r));
      doc.submit(ops.textInsert(['s'], 0, 'c'.repeat(100_000)));
      doc.submit(ops.add(['n'], 1));
      await doc.whenSynced();
      assert.deepEqual(
        rejected.map((r) => r.code),
        [TandemErrorCode.DOC_TOO_LARGE],
      );
      assert.equal(doc.data?.s.length, 1_000_000);
      assert.deepEqual(doc.data, (await serverSnapshot(fixture.server, T, 'sdk-full')).data);
    });
  });

  describe('MAX_DOC_BYTES=100000: a create past it', () => {
    const fixture = useServerPerTest({ MAX_DOC_BYTES: '100000' });
    const { closers } = fixture;

    it('is refused with TANDEM_DOC_TOO_LARGE, one at the limit is created', async () => {
      const client = stockClient(fixture.server.url);
      closers.push(async () => client.close());
      const over = client.connection.get(T, 'over');
      await assert.rejects(create(over, { s: 'x'.repeat(100_000) }), (err) => codeOf(err) === TandemErrorCode.DOC_TOO_LARGE);
      await create(client.connection.get(T, 'at'), { s: 'x'.repeat(100_000 - jsonBytes({ s: '' })) });
      assert.equal(jsonBytes((await serverSnapshot(fixture.server, T, 'at')).data), 100_000);
    });
  });

  describe('the growth attack (250 KB ops), MAX_DOC_BYTES=4 MiB, server in its own process', () => {
    const LIMIT = 4 * 1024 * 1024;
    const CHUNK = 250_000;
    const fixture = useServerProcessPerTest({ MAX_DOC_BYTES: String(LIMIT) });
    const closers = fixture.closers;

    for (const transport of TRANSPORTS) {
      it(`over ${transport}: growth stops at the limit, small ops stay fast, a fetch returns at most the limit`, async () => {
        const url = fixture.server.url;
        const { otherDoc, attacker } = await openAttack(url, transport, T, closers);
        await attacker.create(T, 'grown', { n: 10, log: [] });

        const health = watchHealth(url, fixture.server.child.pid!);
        const work = bystander(otherDoc);
        let v = 1;
        let accepted = 0;
        const outcomes: string[] = [];
        for (let i = 0; i < 40; i++) {
          const reply = await attacker.submit({ c: T, d: 'grown', v, op: ops.insert(['log', accepted], 'x'.repeat(CHUNK)) });
          outcomes.push(reply.error?.code ?? 'ack');
          if (!reply.error) {
            v++;
            accepted++;
          }
        }
        // Ten-byte ops on the full document: each answered quickly (before: 2–2.7 s at 50 MB).
        const smallAckMs: number[] = [];
        for (let i = 0; i < 10; i++) {
          const started = performance.now();
          const reply = await attacker.submit({ c: T, d: 'grown', v, op: ['n', { ena: 1 }] });
          smallAckMs.push(performance.now() - started);
          assert.equal(reply.error, undefined);
          v++;
        }
        const fetched = await attacker.exchange({ a: 'f', c: T, d: 'grown' }, (m: Json) => m.a === 'f' && m.d === 'grown', 'fetch');
        const committed = (await work.stop()).commits;
        const report = await health.stop();

        // Each chunk costs its quotes and a comma (the first none): 17 + k·(CHUNK + 3) − 1 bytes.
        const full = Math.floor((LIMIT - jsonBytes({ n: 10, log: [] }) + 1) / (CHUNK + 3));
        assert.deepEqual(outcomes, [...Array<string>(full).fill('ack'), ...Array<string>(40 - full).fill(TandemErrorCode.DOC_TOO_LARGE)]);
        const bytes = jsonBytes(fetched.data.data);
        assert.ok(bytes <= LIMIT, `a fetch returned ${bytes} bytes`);
        assert.ok(Math.max(...smallAckMs) < 1000, `10-byte ops took up to ${Math.round(Math.max(...smallAckMs))} ms`);
        assert.equal(fixture.server.child.exitCode, null);
        assert.ok(report.maxHealthzMs < 1000, `/healthz took ${report.maxHealthzMs} ms`);
        assert.ok(report.maxRssBytes < RSS_BOUND_BYTES, `RSS ${Math.round(report.maxRssBytes / 1e6)} MB`);
        assert.ok(committed > 0, 'the bystander committed meanwhile');
        console.log(
          `      ${transport}: ${accepted} × 250 KB accepted (${bytes} bytes), ${40 - accepted} refused; 10-byte ops ≤ ${Math.round(Math.max(...smallAckMs))} ms; ` +
            `/healthz ≤ ${Math.round(report.maxHealthzMs)} ms; RSS ≤ ${Math.round(report.maxRssBytes / 1e6)} MB; bystander ${committed} commits`,
        );
      });
    }
  });

  describe('text edits past the end of their string', () => {
    const fixture = useServerPerTest();
    const { closers } = fixture;

    for (const transport of TRANSPORTS) {
      it(`over ${transport}: a skip or delete of 1e15 characters is refused at once, and the server goes on`, async () => {
        const client = await WireClient.open(transport, fixture.server.url);
        closers.push(() => client.close());
        await client.handshake();
        await client.create(T, 'text', { s: 'hello 🌍' });
        const started = performance.now();
        for (const es of [[1e15, 'x'], [{ d: 1e15 }], [3, { d: 6 }], [8, 'x']]) {
          const reply = await client.submit({ c: T, d: 'text', v: 1, op: ['s', { es }] });
          assert.equal(reply.error?.code, 'ERR_OT_OP_NOT_APPLIED', JSON.stringify(es));
          assert.match(reply.error.message, /past the end/);
        }
        assert.ok(performance.now() - started < 1000, 'answered at once (json1 alone would count 1e15 code points first)');
        // Up to the end is fine: "hello 🌍" is 7 code points.
        assert.equal((await client.submit({ c: T, d: 'text', v: 1, op: ['s', { es: [7, '!'] }] })).error, undefined);
        assert.equal((await client.submit({ c: T, d: 'text', v: 2, op: ['s', { es: [{ d: 6 }] }] })).error, undefined);
        assert.deepEqual((await serverSnapshot(fixture.server, T, 'text')).data, { s: '🌍!' });
      });
    }
  });

  describe('ids: well-formed Unicode, at most MAX_ID_LENGTH (512) characters', () => {
    const fixture = useServerPerTest();
    const { closers } = fixture;

    for (const transport of TRANSPORTS) {
      it(`over ${transport}: every message naming a bad id is refused with TANDEM_INVALID_ID before the store`, async () => {
        const client = await WireClient.open(transport, fixture.server.url);
        closers.push(() => client.close());
        await client.handshake();
        const refusedWith = async (frame: Record<string, unknown>): Promise<string | undefined> => {
          const match = frame.a === 'op' ? WireClient.opReply(frame.seq as number) : (m: Json) => m.a === frame.a;
          const reply = await client.exchange(frame, match, `reply to ${frame.a}`);
          return reply.error?.code;
        };
        const create = (d: unknown, c: unknown = T) => ({
          a: 'op',
          src: client.src,
          seq: client.nextSeq(),
          c,
          d,
          v: null,
          create: { type: JSON1_URI, data: { d } },
        });

        // The attack: three ids the store would keep as one row.
        assert.equal(await refusedWith(create('\ud800')), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith(create('\udc00')), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith(create('\ufffd')), undefined);
        assert.equal(await refusedWith(create('a\ud800b')), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith(create('ok', 'no\udc00tes')), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith({ a: 'f', c: T, d: '\ud800' }), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith({ a: 's', c: T, d: '\udc00' }), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith({ a: 'nf', c: T, d: '\udc00', v: 0 }), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith({ a: 'bf', c: T, b: ['ok', '\ud800'] }), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith({ a: 'bs', c: T, b: { ok: null, '\udc00': null } }), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith({ a: 'qf', id: 1, c: '\ud800', q: {} }), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith({ a: 'ps', ch: `${T}.\ud800`, seq: 1 }), TandemErrorCode.INVALID_ID);
        // Length, in characters (code points): astral characters count once.
        assert.equal(await refusedWith(create('x'.repeat(513))), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith(create('😀'.repeat(513))), TandemErrorCode.INVALID_ID);
        assert.equal(await refusedWith(create('x'.repeat(512))), undefined);
        assert.equal(await refusedWith(create('😀'.repeat(512))), undefined);
        assert.equal(await refusedWith(create('ok', 'c'.repeat(513))), TandemErrorCode.INVALID_ID);

        // The connection stays usable, and "\ufffd" is its own document, untouched by the others.
        const fetched = await client.exchange({ a: 'f', c: T, d: '\ufffd' }, (m: Json) => m.a === 'f', 'fetch');
        assert.deepEqual([fetched.data.v, fetched.data.data], [1, { d: '\ufffd' }]);
      });
    }
  });

  describe('keys json1 cannot keep, and lone surrogates in values', () => {
    const fixture = useServerPerTest();
    const { closers } = fixture;
    const RESERVED = ['__proto__', 'toString', 'hasOwnProperty', 'constructor', 'valueOf'];

    /** `{[key]: value}` with `key` as an own property, as JSON.parse makes it (even for __proto__). */
    const own = (key: string, value: unknown): Record<string, unknown> => JSON.parse(`{${JSON.stringify(key)}:${JSON.stringify(value)}}`);

    for (const transport of TRANSPORTS) {
      it(`over ${transport}: creates and ops with them are refused with TANDEM_INVALID_OP naming the key; other keys are kept`, async () => {
        const client = await WireClient.open(transport, fixture.server.url);
        closers.push(() => client.close());
        await client.handshake();
        await client.create(T, 'keys', { keep: { proto: 1, __proto: 2, toString2: 3 } });
        let v = 1;
        for (const key of RESERVED) {
          const created = await client.submit({
            c: T,
            d: `keys-${key}`,
            v: null,
            create: { type: JSON1_URI, data: { nested: own(key, { x: 1 }) } },
          });
          assert.equal(created.error?.code, TandemErrorCode.INVALID_OP, `create with ${key}`);
          assert.match(created.error.message, new RegExp(`"${key}"`));
          for (const op of [
            [key, { i: 1 }],
            ['keep', key, { i: 1 }],
            ['add', { i: own(key, 1) }],
            [key, 'x', { i: 1 }],
          ]) {
            const reply = await client.submit({ c: T, d: 'keys', v, op });
            assert.equal(reply.error?.code, TandemErrorCode.INVALID_OP, `op ${JSON.stringify(op)}`);
            assert.match(reply.error.message, new RegExp(`"${key}"`));
          }
        }
        for (const op of [
          ['bad', { i: 'a\ud800' }],
          ['bad', { i: own('k\udc00', 1) }],
        ]) {
          const reply = await client.submit({ c: T, d: 'keys', v, op });
          assert.equal(reply.error?.code, TandemErrorCode.INVALID_OP, `op ${JSON.stringify(op)}`);
        }
        // Ordinary keys that look alike are stored, and kept through an unrelated edit.
        assert.equal((await client.submit({ c: T, d: 'keys', v: v++, op: ['other', { i: 1 }] })).error, undefined);
        const stored = await serverSnapshot(fixture.server, T, 'keys');
        assert.deepEqual(stored.data, { keep: { proto: 1, __proto: 2, toString2: 3 }, other: 1 });
        assert.equal(stored.v, v);
      });
    }

    it('a stock ShareDB client gets the code for creates with them (json1 refuses its ops locally)', async () => {
      const client = stockClient(fixture.server.url);
      closers.push(async () => client.close());
      const refusedCreate = client.connection.get(T, 'stock-proto');
      await assert.rejects(create(refusedCreate, own('__proto__', { x: 1 })), (err) => codeOf(err) === TandemErrorCode.INVALID_OP);
      const toStringCreate = client.connection.get(T, 'stock-tostring');
      await assert.rejects(create(toStringCreate, { list: [own('toString', 1)] }), (err) => codeOf(err) === TandemErrorCode.INVALID_OP);
      const doc = client.connection.get(T, 'stock-keys');
      await create(doc, { a: 1 });
      // json1 refuses these itself, before sending: "__proto__" as a path key, the others
      // because it sees an inherited property there (ShareDB then reloads the document).
      for (const key of RESERVED) {
        await assert.rejects(submit(doc, [key, { i: 1 }]), /key/);
        await waitFor(() => doc.version !== null && !doc.hasWritePending(), { what: 'the document reloaded' });
      }
      await submit(doc, ['b', { i: 2 }]);
      assert.deepEqual((await serverSnapshot(fixture.server, T, 'stock-keys')).data, { a: 1, b: 2 });
      const fresh = stockClient(fixture.server.url);
      closers.push(async () => fresh.close());
      const again = fresh.connection.get(T, 'stock-proto');
      await fetchDoc(again);
      assert.equal(again.type, null, 'the refused create stored nothing');
    });

    it('the SDK: a create is refused with the code, an op is thrown locally or rejected, nothing is lost silently', async () => {
      const client = sdkClient(fixture.server.url, closers);
      const bad = client.doc(T, 'sdk-proto', { create: own('__proto__', { x: 1 }) as never });
      await assert.rejects(
        bad.ready,
        (err) => err instanceof TandemError && err.code === TandemErrorCode.INVALID_OP && /"__proto__"/.test(err.message),
      );
      const doc = client.doc<Record<string, unknown>>(T, 'sdk-keys', { create: { a: 1 }, composeOps: false });
      await doc.ready;
      const rejected: OpRejection[] = [];
      doc.on('rejected', (r) => rejected.push(r));
      for (const key of RESERVED) {
        assert.throws(
          () => doc.submit(ops.insert([key], 1)),
          (err) => err instanceof TandemError && err.code === TandemErrorCode.INVALID_OP,
        );
      }
      doc.submit(ops.insert(['b'], 'a\ud800'));
      doc.submit(ops.insert(['c'], 3));
      await doc.whenSynced();
      assert.deepEqual(
        rejected.map((r) => r.code),
        [TandemErrorCode.INVALID_OP],
      );
      assert.match(rejected[0]!.message, /not well-formed Unicode/);
      assert.deepEqual(JSON.parse(JSON.stringify(doc.data)), { a: 1, c: 3 });
      assert.deepEqual((await serverSnapshot(fixture.server, T, 'sdk-keys')).data, { a: 1, c: 3 });
    });
  });
});
