/**
 * The end of a turn (server/turn.ts): durable flushes (the group COMMIT) run before send
 * flushes; a failed one discards what was held. A committed op reaches local subscribers
 * after an idle turn's sends (its ack first) and within a busy turn, through both pub/subs.
 * Per-turn send batching: a socket.io client that asks for batches gets every message of a
 * turn in one packet, in order; other clients get one packet per message, also at the
 * turn's end; raw WebSocket frames of a turn leave corked together.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import ShareDB from 'sharedb';
import type { Socket as ServerSocket } from 'socket.io';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { BATCH_QUERY_PARAM, SHAREDB_BATCH_EVENT, SHAREDB_EVENT, TandemErrorCode } from '../../client/protocol.js';
import { ops } from '../../ot-types/index.js';
import { corkUntilTurnEnds } from '../../server/transport/cork.js';
import { SocketIoSender } from '../../server/transport/socketio-sender.js';
import { Turn } from '../../server/turn.js';
import { openPubSub } from '../../server/pubsub/index.js';
import { createLogger } from '../../server/ops/logger.js';
import { redisServerAvailable, startTestRedis, type TestRedis } from '../helpers/redis-server.js';
import { requireService } from '../helpers/skip.js';
import { create, socketClient, subscribe, type Doc } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

type Emitted = [event: string, payload: unknown];

/** The part of a socket.io server socket SocketIoSender uses. */
function fakeSocket(batch: boolean, encode: (payload: unknown) => void = JSON.stringify) {
  const emitted: Emitted[] = [];
  const socket = {
    connected: true,
    handshake: { query: batch ? { [BATCH_QUERY_PARAM]: '1' } : {} },
    emit(event: string, payload: unknown) {
      encode(payload); // socket.io encodes before it writes: a throw sends nothing
      emitted.push([event, payload]);
      return true;
    },
  };
  return { socket: socket as unknown as ServerSocket, emitted };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('per-turn send batching', () => {
  describe('SocketIoSender', () => {
    it('sends the messages of one turn as one batch, in order, at the end of the turn', async () => {
      const { socket, emitted } = fakeSocket(true);
      const sender = new SocketIoSender(socket, new Turn());
      sender.send({ n: 1 });
      sender.send({ n: 2 });
      await Promise.resolve(); // microtasks of the same turn still join the batch
      sender.send({ n: 3 });
      assert.deepEqual(emitted, [], 'nothing leaves before the turn ends');
      await nextTurn();
      assert.deepEqual(emitted, [[SHAREDB_BATCH_EVENT, [{ n: 1 }, { n: 2 }, { n: 3 }]]]);
      sender.send({ n: 4 });
      await nextTurn();
      assert.deepEqual(emitted.at(-1), [SHAREDB_EVENT, { n: 4 }], 'a lone message goes as a plain message');
    });

    it('sends one message per packet, also at the end of the turn, to a client that did not ask for batches', async () => {
      const { socket, emitted } = fakeSocket(false);
      const sender = new SocketIoSender(socket, new Turn());
      sender.send({ n: 1 });
      sender.send({ n: 2 });
      assert.deepEqual(emitted, []);
      await nextTurn();
      assert.deepEqual(emitted, [
        [SHAREDB_EVENT, { n: 1 }],
        [SHAREDB_EVENT, { n: 2 }],
      ]);
    });

    it('replaces a message that cannot be encoded by a coded error and still sends the others', async () => {
      const { socket, emitted } = fakeSocket(true, (payload) => {
        JSON.stringify(payload); // throws on the BigInt below
      });
      const sender = new SocketIoSender(socket, new Turn());
      sender.send({ n: 1 });
      sender.send({ n: 2n });
      sender.send({ n: 3 });
      await nextTurn();
      assert.equal(emitted.length, 3);
      assert.deepEqual(emitted[0], [SHAREDB_EVENT, { n: 1 }]);
      const error = (emitted[1]![1] as { error: { code: string } }).error;
      assert.equal(error.code, TandemErrorCode.BAD_FRAME);
      assert.deepEqual(emitted[2], [SHAREDB_EVENT, { n: 3 }]);
    });

    it('turn.flushNow() sends what is held now; nothing goes to a disconnected socket', async () => {
      const { socket, emitted } = fakeSocket(true);
      const turn = new Turn();
      const sender = new SocketIoSender(socket, turn);
      sender.send({ n: 1 });
      turn.flushNow();
      assert.deepEqual(emitted, [[SHAREDB_EVENT, { n: 1 }]]);
      sender.send({ n: 2 });
      (socket as unknown as { connected: boolean }).connected = false;
      await nextTurn();
      assert.equal(emitted.length, 1);
    });

    it('drops what it holds when the turn fails, and everything sent after', async () => {
      const { socket, emitted } = fakeSocket(true);
      const turn = new Turn();
      const sender = new SocketIoSender(socket, turn);
      sender.send({ n: 1 });
      turn.beforeSend(() => {
        throw new Error('disk I/O error');
      });
      await nextTurn();
      sender.send({ n: 2 });
      await nextTurn();
      assert.deepEqual(emitted, []);
    });
  });

  describe('Turn', () => {
    it('runs the durable flushes before the send flushes, once per turn, in order', async () => {
      const turn = new Turn();
      const order: string[] = [];
      turn.send(() => order.push('send 1'));
      turn.beforeSend(() => order.push('commit 1'));
      turn.send(() => order.push('send 2'));
      turn.beforeSend(() => order.push('commit 2'));
      assert.deepEqual(order, []);
      await nextTurn();
      assert.deepEqual(order, ['commit 1', 'commit 2', 'send 1', 'send 2']);
      await nextTurn();
      assert.equal(order.length, 4, 'each flush runs once');
    });

    it('a durable flush that throws fails the turn: listeners hear it once, sends get discard=true', async () => {
      const turn = new Turn();
      const failures: string[] = [];
      const sends: boolean[] = [];
      turn.onFailure((err) => failures.push(err.message));
      turn.send((discard) => sends.push(discard));
      turn.beforeSend(() => {
        throw new Error('disk full');
      });
      let laterCommitRan = false;
      turn.beforeSend(() => {
        laterCommitRan = true;
      });
      await nextTurn();
      assert.deepEqual(failures, ['disk full']);
      assert.deepEqual(sends, [true]);
      assert.ok(laterCommitRan, 'the other durable flushes still run');
      assert.equal(turn.failed?.message, 'disk full');
      turn.send((discard) => sends.push(discard));
      assert.deepEqual(sends, [true, true], 'after a failure a send is discarded at once');
    });

    it("delivers a turn's only op after its sends; a second one in the turn releases it and both go before the sends, in order", async () => {
      const turn = new Turn();
      const order: string[] = [];
      turn.deliver(() => {
        order.push('deliver 1');
        turn.send(() => order.push('sent by delivery 1'));
      });
      turn.send(() => order.push('ack 1'));
      turn.beforeSend(() => order.push('commit'));
      await nextTurn();
      assert.deepEqual(order, ['commit', 'ack 1', 'deliver 1'], 'an idle turn: the ack first');
      await nextTurn();
      assert.deepEqual(order.at(-1), 'sent by delivery 1', 'what the delivery sends leaves with the next turn');

      order.length = 0;
      turn.deliver(() => order.push('deliver 2'));
      turn.send(() => order.push('ack 2'));
      turn.deliver(() => order.push('deliver 3'));
      turn.send(() => order.push('ack 3'));
      turn.deliver(() => order.push('deliver 4'));
      await nextTurn();
      assert.deepEqual(order, ['deliver 2', 'deliver 3', 'deliver 4', 'ack 2', 'ack 3'], 'a busy turn: every delivery in it, in order');
    });

    for (const kind of ['in-process', 'Redis'] as const) {
      it(`${kind} pub/sub delivers an idle turn's op to local subscribers after its ack, a busy turn's in the turn, never a failed turn's`, async function () {
        let redis: TestRedis | null = null;
        if (kind === 'Redis') {
          requireService(this, redisServerAvailable(), 'redis-server not installed');
          redis = await startTestRedis();
        }
        const turn = new Turn();
        const handle = await openPubSub({
          redisUrl: redis?.url ?? null,
          prefix: 'turn-test',
          logger: createLogger('silent'),
          db: new ShareDB.MemoryDB(),
          turn,
        });
        try {
          await waitFor(() => handle.ping().then(() => true), { timeoutMs: 10_000, what: 'the pub/sub ready' });
          const order: string[] = [];
          const stream = await new Promise<Readable>((resolve, reject) =>
            handle.pubsub.subscribe('notes', (err, s) => (err ? reject(err) : resolve(s as unknown as Readable))),
          );
          stream.on('data', (op: { v: number }) => order.push(`delivered ${op.v}`));
          // As ShareDB's submit does: publish the committed op, then queue the ack.
          handle.pubsub.publish(['notes'], { c: 'notes', d: 'a', v: 1 }, () => {});
          turn.send(() => order.push('ack 1'));
          await waitFor(() => order.length === 2, { timeoutMs: 2000, what: 'the ack and the delivery' });
          assert.deepEqual(order, ['ack 1', 'delivered 1']);

          order.length = 0;
          handle.pubsub.publish(['notes'], { c: 'notes', d: 'a', v: 2 }, () => {});
          turn.send(() => order.push('ack 2'));
          handle.pubsub.publish(['notes'], { c: 'notes', d: 'a', v: 3 }, () => {});
          turn.send(() => order.push('ack 3'));
          await waitFor(() => order.length === 4, { timeoutMs: 2000, what: 'two acks and two deliveries' });
          assert.deepEqual(order, ['delivered 2', 'delivered 3', 'ack 2', 'ack 3'], 'two ops in one turn: delivered in it, in order');
          order.length = 0;

          turn.beforeSend(() => {
            throw new Error('disk full');
          });
          handle.pubsub.publish(['notes'], { c: 'notes', d: 'a', v: 4 }, () => {});
          await nextTurn();
          await nextTurn();
          assert.deepEqual(order, [], 'an op of a failed turn reaches no local subscriber');
          stream.destroy();
        } finally {
          // As Backend.close() does: the pub/sub itself holds the connections.
          await new Promise<void>((resolve) => handle.pubsub.close(() => resolve()));
          await handle.close();
          await redis?.destroy();
        }
      });
    }
  });

  describe('corkUntilTurnEnds', () => {
    it('holds every write of the turn and releases them together when the turn ends', async () => {
      const server = net.createServer();
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const accepted = once(server, 'connection');
      const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
      const [peer] = (await accepted) as [net.Socket];
      try {
        await once(client, 'connect');
        const received: Buffer[] = [];
        peer.on('data', (chunk: Buffer) => received.push(chunk));
        const turn = new Turn();
        corkUntilTurnEnds(turn, client);
        corkUntilTurnEnds(turn, client); // a second call in the same turn does not cork twice
        client.write('a');
        client.write('b');
        client.write('c');
        assert.equal(client.writableCorked, 1);
        assert.equal(client.writableLength, 3, 'the writes are held in the socket');
        await nextTurn();
        assert.equal(client.writableCorked, 0);
        await waitFor(() => Buffer.concat(received).toString() === 'abc', { timeoutMs: 5000, what: 'the corked bytes' });
      } finally {
        client.destroy();
        peer.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
  });

  describe('over a real server', () => {
    let server: TestServer;
    const sockets: ClientSocket[] = [];
    afterEach(async () => {
      for (const s of sockets.splice(0)) s.disconnect();
      await server?.close();
    });

    it('a batching client gets the ops several writers commit in one turn in one packet, in version order', async () => {
      server = await startTestServer();
      const writer = socketClient(server.url);
      const doc: Doc = writer.connection.get('notes', 'batch');
      await create(doc, { items: [] });
      writer.close();

      // A raw socket.io client speaking ShareDB's protocol, so the packets can be counted.
      const reader = ioClient(server.url, { transports: ['websocket'], query: { [BATCH_QUERY_PARAM]: '1' }, forceNew: true });
      sockets.push(reader);
      const packets: unknown[][] = [];
      reader.on(SHAREDB_EVENT, (message: unknown) => packets.push([message]));
      reader.on(SHAREDB_BATCH_EVENT, (batch: unknown[]) => packets.push(batch));
      await new Promise<void>((resolve) => reader.once('connect', () => resolve()));
      reader.emit(SHAREDB_EVENT, JSON.stringify({ a: 'hs', id: null, protocol: 1, protocolMinor: 2 }));
      reader.emit(SHAREDB_EVENT, JSON.stringify({ a: 's', c: 'notes', d: 'batch' }));
      const isSubscribed = (m: unknown) => (m as { a?: string }).a === 's';
      await waitFor(() => packets.flat().some(isSubscribed), { timeoutMs: 5000, what: 'the subscription' });
      const before = packets.length;

      // Ten in-process writers submit in the same turn: their commits all finish before the
      // turn ends (no socket I/O between them), so the reader's ten ops form one batch.
      const WRITERS = 10;
      const writers = Array.from({ length: WRITERS }, () => server.backend.connect());
      const docs = writers.map((c) => c.get('notes', 'batch'));
      await Promise.all(docs.map((d) => new Promise<void>((resolve, reject) => d.fetch((e) => (e ? reject(e) : resolve())))));
      await Promise.all(
        docs.map(
          (d, i) =>
            new Promise<void>((resolve, reject) => d.submitOp(ops.insert(['items', 0], `w${i}`), {}, (e) => (e ? reject(e) : resolve()))),
        ),
      );

      const opsSeen = () =>
        packets
          .slice(before)
          .flat()
          .filter((m) => (m as { a?: string }).a === 'op') as Array<{ v: number }>;
      await waitFor(() => opsSeen().length === WRITERS, { timeoutMs: 5000, what: 'every op at the reader' });
      assert.deepEqual(
        opsSeen().map((m) => m.v),
        Array.from({ length: WRITERS }, (_, i) => 1 + i),
        'contiguous versions, in order',
      );
      assert.ok(packets.length - before < WRITERS, `fewer packets (${packets.length - before}) than ops (${WRITERS})`);
      for (const c of writers) c.close();
    });

    it('the SDK (which asks for batches) converges with writers on both transports', async () => {
      server = await startTestServer();
      const a = socketClient(server.url);
      const b = socketClient(server.url, { transports: ['polling'] });
      try {
        const docA = a.connection.get('notes', 'sdk');
        await create(docA, { items: [] });
        const docB = b.connection.get('notes', 'sdk');
        await subscribe(docA);
        await subscribe(docB);
        for (let i = 0; i < 20; i++) {
          docA.submitOp(ops.insert(['items', 0], `a${i}`));
          docB.submitOp(ops.insert(['items', 0], `b${i}`));
        }
        const full = (d: Doc) => (d.data as { items: string[] }).items.length === 40;
        await waitFor(() => full(docA) && full(docB) && !docA.hasPending() && !docB.hasPending(), {
          timeoutMs: 10_000,
          what: 'both copies with all 40 items',
        });
        assert.deepEqual(docA.data, docB.data);
        assert.equal(docA.version, docB.version);
      } finally {
        a.close();
        b.close();
      }
    });
  });
});
