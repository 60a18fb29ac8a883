/**
 * The observer of an attack test, in its own Node process (see presence-watch.ts
 * startWatcher): the attacker and its 200 subscribers keep the test process busy, and a
 * /healthz probe or a bystander's ack waiting in that process's queue would be charged to
 * the server. Arguments: server URL, server pid. Commands on stdin, one JSON line each:
 * `{"start": {"collection", "id", "transport"}}` starts polling /healthz and RSS and a
 * bystander committing to that document (answers `{"event":"started"}`); `{"stop": true}`
 * answers `{"event":"stopped","watched":…,"wrote":…}`. Closing stdin ends the process.
 */
import { createInterface } from 'node:readline';
import { callback, openClient, type TappedClient, type Transport } from './presence-clients.js';
import { keepCommitting, watchServer, type Committer, type ServerWatch } from './presence-watch.js';

const [url, pidText] = process.argv.slice(2);
const pid = Number(pidText);
const closers: Array<() => Promise<void>> = [];
const clients = new Map<Transport, TappedClient>();
let running: { watch: { stop(): Promise<ServerWatch> }; writer: { stop(): Promise<Committer> } } | null = null;

function say(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

async function start(collection: string, id: string, transport: Transport): Promise<void> {
  let client = clients.get(transport);
  if (!client) {
    client = await openClient(url!, transport, closers);
    client.countOnly = true;
    clients.set(transport, client);
  }
  const doc = client.connection.get(collection, id);
  await callback((done) => doc.subscribe(done));
  running = { watch: watchServer(url!, pid), writer: keepCommitting(doc) };
  say({ event: 'started' });
}

async function stop(): Promise<void> {
  if (!running) return say({ event: 'fatal', message: 'stop before start' });
  const { watch, writer } = running;
  running = null;
  const [watched, wrote] = await Promise.all([watch.stop(), writer.stop()]);
  say({ event: 'stopped', watched, wrote });
}

const lines = createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue
    .then(async () => {
      const command = JSON.parse(line) as { start?: { collection: string; id: string; transport: Transport }; stop?: true };
      if (command.start) await start(command.start.collection, command.start.id, command.start.transport);
      else if (command.stop) await stop();
    })
    .catch((err: Error) => say({ event: 'fatal', message: err.stack ?? err.message }));
});
lines.on('close', () => {
  void queue.then(async () => {
    if (running) await stop();
    for (const close of closers.splice(0).reverse()) await close();
    process.exit(0);
  });
});
