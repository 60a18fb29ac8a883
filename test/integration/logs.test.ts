/**
 * Logs (issue: everything ShareDB logs goes through pino with Tandem's fields; each line
 * about a document carries collection, id, version and the connection id). Against a server
 * process at LOG_LEVEL=debug: every stdout line is JSON and stderr stays empty, ShareDB's
 * own log calls arrive as JSON lines with named fields, and a refused request's line names
 * the document, the version and the connection whose client id the client knows.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import ShareDB from 'sharedb';
import { routeShareDbLogs, shareDbLogLine } from '../../server/ops/sharedb-logs.js';
import { create, stockClient } from '../helpers/clients.js';
import { useServerProcessPerTest } from '../helpers/process-server.js';
import { waitFor } from '../helpers/wait.js';
import { HANDSHAKE, RawShareDb } from '../resilience/connection-wire.js';

type Line = Record<string, unknown>;

describe('logs: JSON lines with document and connection fields', function () {
  this.timeout(30_000);
  const fx = useServerProcessPerTest({ LOG_LEVEL: 'debug' });

  function linesWhere(match: (line: Line) => boolean): Line[] {
    return fx.server.logs.filter(match);
  }

  it("a refused op is one line with collection, id, version and the connection's client id; ShareDB's stack of it is a debug JSON line", async () => {
    const app = stockClient(fx.server.url);
    fx.closers.push(async () => app.close());
    await create(app.connection.get('notes', 'logged'), { text: 'hi' });

    const raw = await RawShareDb.open(fx.server.url);
    fx.closers.push(() => raw.close());
    const clientId = raw.messages.find((m) => m.a === 'hs')!.id as string;
    assert.equal(typeof clientId, 'string');
    // An op at a version the document has not reached: ShareDB refuses it (its own error, with a stack).
    raw.send({ a: 'op', c: 'notes', d: 'logged', v: 7, src: clientId, seq: 1, op: ['text', { es: ['!'] }] });
    const reply = await raw.next((m) => m.a === 'op' && m.error !== undefined, 'the refusal');
    const code = (reply.error as { code: string }).code;

    const refused = await waitFor(() => linesWhere((l) => l.msg === 'request refused' && l.id === 'logged')[0], {
      what: 'the refusal log line',
    });
    assert.equal(refused.code, code);
    assert.equal(refused.action, 'op');
    assert.equal(refused.collection, 'notes');
    assert.equal(refused.version, 7);
    assert.equal(refused.connection, clientId, 'the client id the client was given at its handshake');
    assert.equal(refused.ip, '127.0.0.1');

    const stack = await waitFor(() => linesWhere((l) => l.msg === 'sharedb' && typeof l.sharedb === 'string')[0], {
      what: "ShareDB's stack of the refusal as a debug line",
    });
    assert.equal(stack.level, 20);
    assert.match(stack.sharedb as string, /at /, 'a stack trace, as ShareDB logged it');
    assert.deepEqual(fx.server.nonJson, [], 'every stdout line is JSON');
    assert.equal(fx.server.stderr(), '', 'nothing on stderr');
  });

  it("ShareDB's warning about a message before the handshake is a JSON line naming what was received", async () => {
    const raw = await RawShareDb.open(fx.server.url, { handshake: false });
    fx.closers.push(() => raw.close());
    raw.send({ a: 'f', c: 'notes', d: 'early' });
    raw.send(HANDSHAKE);
    await raw.next((m) => m.a === 'hs', 'handshake reply');
    const warned = await waitFor(() => linesWhere((l) => l.msg === 'sharedb: Unexpected message received before handshake')[0], {
      what: "ShareDB's warning",
    });
    assert.equal(warned.level, 40);
    assert.match(warned.received as string, /"d":"early"/);
    assert.deepEqual(fx.server.nonJson, []);
    assert.equal(fx.server.stderr(), '');
  });
});

describe('logs: ShareDB log calls named field by field', () => {
  function capture(): { lines: Line[]; restore(): void } {
    const lines: Line[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const text of chunk.toString().split('\n')) if (text) lines.push(JSON.parse(text) as Line);
        done();
      },
    });
    routeShareDbLogs(pino({ level: 'debug' }, sink));
    // Later servers route ShareDB's logger to their own; the default is the console.
    return { lines, restore: () => routeShareDbLogs(pino({ level: 'silent' })) };
  }

  it('every server-side call ShareDB makes gets its fields; an unknown call keeps its text', async () => {
    const { lines, restore } = capture();
    try {
      ShareDB.logger.error('Doc subscription stream error', 'notes', 'd1', new Error('boom'));
      ShareDB.logger.warn('Agent closed due to error', 'client-7', new Error('gone'));
      ShareDB.logger.error('Error sanitizing op emitted from subscription', 'notes', 'd2', { v: 41, op: [] }, new Error('bad'));
      ShareDB.logger.error('Presence subscription stream error', 'notes.d3', 'lost');
      ShareDB.logger.error('Query subscription stream error', 'notes', { n: { $gt: 1 } }, new Error('q'));
      ShareDB.logger.warn('something new', 42);
      await waitFor(() => lines.length >= 6, { what: 'six lines' });
    } finally {
      restore();
    }
    const [doc, agent, sanitize, presence, query, unknown] = lines;
    assert.deepEqual([doc!.collection, doc!.id, doc!.level], ['notes', 'd1', 50]);
    assert.match(doc!.err as string, /boom/);
    assert.deepEqual([agent!.connection, agent!.level], ['client-7', 40]);
    assert.deepEqual([sanitize!.collection, sanitize!.id, sanitize!.version], ['notes', 'd2', 41]);
    assert.deepEqual([presence!.channel, presence!.err], ['notes.d3', 'lost']);
    assert.deepEqual([query!.collection, query!.query], ['notes', '{"n":{"$gt":1}}']);
    assert.deepEqual([unknown!.msg, unknown!.sharedb], ['sharedb', 'something new 42']);
  });

  it('clips what a client sent to 256 characters', () => {
    const { fields } = shareDbLogLine(['Doc subscription stream error', 'c'.repeat(1000), 'd', 'x']);
    assert.equal((fields.collection as string).length, 257);
  });
});
