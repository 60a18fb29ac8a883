import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { TandemErrorCode } from '../../client/protocol.js';
import { fetchDoc, stockClient } from '../helpers/clients.js';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * MongoDB cannot run here, but an unreachable one can: a port that accepts and drops
 * connections stands in for a MongoDB that is down.
 */
describe('an unreachable store is reported, in JSON, and reaches clients as a documented code', function () {
  this.timeout(40_000);
  let dropper: Server;
  let server: ServerProcess | null = null;

  beforeEach(async () => {
    dropper = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
  });
  afterEach(async () => {
    await server?.kill();
    server = null;
    await new Promise<void>((resolve) => dropper.close(() => resolve()));
  });

  it('MongoDB down at start: a warning at start-up, /readyz 503, TANDEM_STORAGE_ERROR for a fetch, every log line JSON', async () => {
    const port = (dropper.address() as AddressInfo).port;
    server = await startServerProcess({
      DB_URL: `mongodb://127.0.0.1:${port}/tandem?serverSelectionTimeoutMS=300&connectTimeoutMS=300`,
    });
    await waitFor(() => server!.logs.some((l) => l.msg?.toString().startsWith('store unreachable')), { what: 'the start-up warning' });
    const warning = server.logs.find((l) => String(l.msg).startsWith('store unreachable'))!;
    assert.equal(warning.level, 40);
    assert.equal(warning.db, 'mongo');

    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as { status: string }).status, 'not ready');

    const client = stockClient(server.url);
    try {
      await assert.rejects(fetchDoc(client.connection.get('notes', 'n1')), (err: { code?: string }) => {
        assert.equal(err.code, TandemErrorCode.STORAGE_ERROR);
        return true;
      });
    } finally {
      client.close();
    }
    assert.deepEqual(server.nonJson, [], 'every stdout line is a JSON log line');
    assert.equal(server.stderr(), '', 'nothing on stderr');
  });
});
