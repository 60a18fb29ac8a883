/**
 * A Node client process for the SDK restart tests, run as
 * `node --import tsx test/helpers/sdk-offline-client.ts` with its settings in env:
 *
 *   TANDEM_URL, OUTBOX_PATH, DOC_ID   server, outbox file, document (collection 'notes')
 *   MODE=edit     open the doc online, then make EDITS edits (offline unless ONLINE=1;
 *                 one op per edit when COMPOSE=0), print {"event":"saved"} once all are in
 *                 the outbox, and wait to be killed.
 *   TOKEN         optional: a JWT the client presents (servers with authentication)
 *   MODE=resume   start offline, open the doc from the outbox and print {"event":"restored"};
 *                 on the stdin line "online", sync and print {"event":"synced"}, then exit.
 *
 * Every line on stdout is one JSON object.
 */
import { createInterface } from 'node:readline';
import { connect, ops, SqliteOutboxStore } from '../../client/node.js';

interface Items {
  items: string[];
}

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

function print(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

async function main(): Promise<void> {
  const mode = env('MODE');
  const store = new SqliteOutboxStore({ path: env('OUTBOX_PATH') });
  const client = connect({
    url: env('TANDEM_URL'),
    outbox: store,
    startOffline: mode === 'resume',
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    ...(process.env.TOKEN ? { getToken: () => env('TOKEN') } : {}),
  });
  client.on('error', (err) => print({ event: 'error', code: err.code, message: err.message }));
  const doc = client.doc<Items>('notes', env('DOC_ID'), { composeOps: process.env.COMPOSE !== '0' });
  doc.on('error', (err) => print({ event: 'error', code: err.code, message: err.message }));
  doc.on('rejected', (r) => print({ event: 'rejected', code: r.code }));
  await doc.ready;

  if (mode === 'edit') {
    await doc.whenSynced();
    if (process.env.ONLINE !== '1') client.goOffline();
    const edits = Number(process.env.EDITS ?? '100');
    for (let i = 0; i < edits; i++) {
      const length = doc.data?.items.length ?? 0;
      doc.submit(ops.insert(['items', length], `edit-${i}`));
    }
    await doc.whenSaved();
    print({ event: 'saved', items: doc.data?.items, pending: doc.pendingCount });
    // Stay alive with ops possibly in flight until the test kills us (SIGKILL).
    setInterval(() => undefined, 60_000);
    return;
  }

  print({ event: 'restored', items: doc.data?.items, pending: doc.pendingCount, version: doc.version, state: client.state });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() !== 'online') continue;
    client.goOnline();
    await doc.whenSynced();
    print({ event: 'synced', items: doc.data?.items, version: doc.version, pending: doc.pendingCount });
    break;
  }
  lines.close();
  await client.close();
  await store.close();
  process.exit(0);
}

main().catch((err: unknown) => {
  print({ event: 'fatal', message: err instanceof Error ? err.stack : String(err) });
  process.exit(1);
});
