import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ops, tandemJson1, type JSONOp } from '../../ot-types/index.js';
import { openStorage } from '../../server/storage/index.js';
import { create, fetchDoc, socketClient, subscribe, type Doc } from '../helpers/clients.js';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { waitFor } from '../helpers/wait.js';
import type { SocketConnection } from '../../client/connect.js';

interface StoredOp {
  v: number;
  create?: { type: string; data: unknown };
  op?: JSONOp;
  del?: boolean;
}

type GetOps = (
  collection: string,
  id: string,
  from: number,
  to: null,
  options: object,
  cb: (err: Error | null, found: StoredOp[]) => void,
) => void;

function getOps(db: { getOps: GetOps }, collection: string, id: string): Promise<StoredOp[]> {
  return new Promise((resolve, reject) =>
    db.getOps(collection, id, 0, null, {}, (err: Error | null, found: StoredOp[]) => (err ? reject(err) : resolve(found))),
  );
}

describe('durability: SIGKILL while clients submit', function () {
  this.timeout(60_000);
  let dir: string;
  const processes: ServerProcess[] = [];
  const clients: SocketConnection[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-durability-'));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const p of processes.splice(0)) await p.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged op across a SIGKILL, and the snapshot equals its op log replayed', async () => {
    const dbUrl = `sqlite:${join(dir, 'tandem.db')}`;
    const first = await startServerProcess({ DB_URL: dbUrl });
    processes.push(first);

    const writers = 4;
    const docs: Doc[] = [];
    for (let w = 0; w < writers; w++) {
      const client = socketClient(first.url);
      clients.push(client);
      docs.push(client.connection.get('durable', 'd1'));
    }
    await subscribe(docs[0]!);
    await create(docs[0]!, { keys: {}, log: '' });
    await Promise.all(docs.slice(1).map(subscribe));

    // Each writer submits ops without waiting (several in flight) and records the acks.
    const acked = new Set<string>();
    let submitted = 0;
    let killed = false;
    const pump = (w: number) => {
      if (killed) return;
      const key = `w${w}-${submitted++}`;
      const op = ops.compose(ops.insert(['keys', key], submitted), ops.textInsert(['log'], 0, 'x'));
      docs[w]!.submitOp(op, {}, (err) => {
        if (!err) acked.add(key);
      });
      setImmediate(() => pump(w));
    };
    for (let w = 0; w < writers; w++) pump(w);
    await waitFor(() => acked.size >= 300, { timeoutMs: 30_000, what: '300 acknowledged ops' });
    await first.kill();
    killed = true;
    const ackedAtKill = new Set(acked);
    for (const c of clients.splice(0)) c.close();

    // Restart on the same file and read through a fresh client.
    const second = await startServerProcess({ DB_URL: dbUrl });
    processes.push(second);
    const reader = socketClient(second.url);
    clients.push(reader);
    const doc = reader.connection.get('durable', 'd1');
    await fetchDoc(doc);
    const data = doc.data as { keys: Record<string, number>; log: string };
    for (const key of ackedAtKill) assert.ok(key in data.keys, `acknowledged op ${key} lost`);
    assert.ok(Object.keys(data.keys).length >= ackedAtKill.size);
    assert.equal(data.log.length, Object.keys(data.keys).length, 'each committed op applied exactly once');
    await second.stop();

    // The stored snapshot must equal the replay of the stored op log.
    const storage = await openStorage(dbUrl, { sqliteSynchronous: 'NORMAL', milestoneInterval: 500 });
    try {
      const log = await getOps(storage.db as unknown as { getOps: GetOps }, 'durable', 'd1');
      assert.equal(log[0]?.create?.type, tandemJson1.uri);
      let replayed: unknown = log[0]!.create!.data;
      log.forEach((entry, i) => {
        assert.equal(entry.v, i, 'op log is contiguous');
        if (entry.op) replayed = tandemJson1.apply(replayed as never, entry.op);
      });
      assert.equal(log.length, doc.version);
      assert.deepEqual(replayed, data);
    } finally {
      await storage.close();
    }
  });
});
