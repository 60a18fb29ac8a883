/**
 * One abusive client, for `load/flood.ts`: anonymous stock ShareDB Connections over the
 * plain WebSocket (`/sharedb`) — one, or one per loop — running three closed loops for `durationMs` — the next
 * request as soon as the previous one is answered, whether accepted or refused, never
 * honouring `retryAfterMs`: ops on 4 documents of its own, presence on a document the other
 * clients edit, and a fetch query over their whole collection. Prints one JSON line with
 * what it sent and how each kind was answered, then exits.
 *
 * `node --import tsx load/flood-attacker.ts <ws-url> <collection> <presence-doc-id> <durationMs> [connections: 1|3]`
 */
import { Connection, type Doc } from 'sharedb/lib/client/index.js';
import WebSocket from 'ws';
import { registerTandemTypes } from '../ot-types/index.js';

export interface LoopCounts {
  sent: number;
  accepted: number;
  /** Refusals by error code. */
  refused: Record<string, number>;
}

export interface AttackerReport {
  ops: LoopCounts;
  presence: LoopCounts;
  queries: LoopCounts;
}

const OWN_DOCS = 4;

function newCounts(): LoopCounts {
  return { sent: 0, accepted: 0, refused: {} };
}

function count(counts: LoopCounts, err: unknown): void {
  if (!err) {
    counts.accepted++;
    return;
  }
  const code = String((err as { code?: unknown }).code ?? 'unknown');
  counts.refused[code] = (counts.refused[code] ?? 0) + 1;
}

/** Runs `request` back to back until `until`; each call resolves with its error or null. */
async function closedLoop(until: number, counts: LoopCounts, request: () => Promise<unknown>): Promise<void> {
  while (performance.now() < until) {
    counts.sent++;
    count(counts, await request());
    // A request refused in the client itself calls back at once: without a turn of the
    // event loop between them, this loop would starve the socket (and the other loops).
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function callback(run: (done: (err?: unknown) => void) => void): Promise<unknown> {
  return new Promise((resolve) => run((err) => resolve(err ?? null)));
}

function connect(url: string): Connection {
  const socket = new WebSocket(url);
  socket.on('error', () => undefined); // ShareDB sees it through onerror
  // ws's WebSocket is what ShareDB's README passes; its typings differ from the DOM's.
  const connection = new Connection(socket as unknown as ConstructorParameters<typeof Connection>[0]);
  connection.on('error', () => undefined); // refusals also reach the connection; counted per request
  return connection;
}

async function main(): Promise<void> {
  const [url, collection, presenceDocId, duration, connectionCount = '1'] = process.argv.slice(2);
  if (!url || !collection || !presenceDocId || !duration)
    throw new Error('usage: flood-attacker.ts <ws-url> <collection> <presence-doc-id> <durationMs> [1|3]');
  registerTandemTypes();
  const connections = Array.from({ length: connectionCount === '3' ? 3 : 1 }, () => connect(url));
  // Ops, presence, queries: each on its own connection when there are three.
  const [opsConnection, presenceConnection, queryConnection] = [0, 1, 2].map((i) => connections[i % connections.length]!);

  const own: Doc[] = [];
  for (let i = 0; i < OWN_DOCS; i++) {
    const doc = opsConnection.get('flood', `attacker-${process.pid}-${i}`);
    const err = await callback((done) => doc.create({ n: 0 }, 'json1', done));
    if (err) throw new Error(`the attacker could not create its documents: ${String((err as Error).message)}`);
    own.push(doc);
  }
  // ShareDB sends presence only on a document it holds: subscribe, and wait for the other
  // clients to create it.
  const target = presenceConnection.get(collection, presenceDocId);
  await callback((done) => target.subscribe(done));
  if (!target.type) await new Promise((resolve) => target.once('create', resolve));
  const presence = presenceConnection.getDocPresence(collection, presenceDocId).create(`attacker-${process.pid}`);
  const report: AttackerReport = { ops: newCounts(), presence: newCounts(), queries: newCounts() };
  const until = performance.now() + Number(duration);
  let turn = 0;
  await Promise.all([
    closedLoop(until, report.ops, () => callback((done) => own[turn++ % OWN_DOCS]!.submitOp(['n', { ena: 1 }], {}, done))),
    closedLoop(until, report.presence, () =>
      callback((done) => presence.submit({ path: ['text'], anchor: 0, head: 0, user: { name: 'attacker' } }, done)),
    ),
    closedLoop(until, report.queries, () => callback((done) => queryConnection.createFetchQuery(collection, {}, {}, (err) => done(err)))),
  ]);
  process.stdout.write(JSON.stringify(report) + '\n');
  for (const connection of connections) connection.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`flood attacker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
