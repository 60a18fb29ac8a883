/**
 * The load tool's stock ShareDB client (load/stock-adapter.ts) going offline and back online
 * against a real server: pending ops must be sent again and acknowledged however soon the
 * client comes back.
 */
import assert from 'node:assert/strict';
import type { LoadConnection } from '../../load/adapter-types.js';
import { connectStockWs } from '../../load/stock-adapter.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

describe('load tool stock ShareDB client: offline and back', function () {
  this.timeout(20_000);
  let server: TestServer;
  let connection: LoadConnection | null = null;

  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    connection?.close();
    connection = null;
    await server.close();
  });

  async function openClient() {
    const errors: string[] = [];
    const client = await connectStockWs({ url: `${server.url}/sharedb` });
    connection = client;
    client.onError((code) => errors.push(code));
    await client.whenConnected(5_000);
    const doc = client.doc('docs', 'stock-offline');
    await doc.open({ text: '' });
    return { client, doc, errors };
  }

  /** The op's ack, or a timeout that names the errors the client reported meanwhile. */
  async function ackOf(acked: Promise<number>, errors: string[]): Promise<number> {
    let version: number | undefined;
    void acked.then((v) => {
      version = v;
    });
    await waitFor(() => version !== undefined, { what: () => `the ack (client errors: ${errors.join(', ') || 'none'})` });
    return version!;
  }

  // goOffline closes the socket gracefully, so its 'close' event waits for the server's close
  // frame. Coming back before that used to bind the new socket while ShareDB still thought it
  // was connected: ERR_CONNECTION_STATE_TRANSITION_INVALID, and pending ops were never sent.
  it('sends pending ops again when it comes back before the old socket has closed', async () => {
    const { client, doc, errors } = await openClient();
    client.goOffline();
    const acked = doc.submit(['text', { es: ['a'] }]);
    client.goOnline();
    assert.equal(await ackOf(acked, errors), 2);
    assert.deepEqual(doc.data, { text: 'a' });
    assert.equal(client.online, true);
    assert.deepEqual(errors, []);
  });

  it('sends pending ops again after a longer time offline', async () => {
    const { client, doc, errors } = await openClient();
    client.goOffline();
    await waitFor(() => !client.online, { what: 'the client to see itself offline' });
    const acked = doc.submit(['text', { es: ['b'] }]);
    client.goOnline();
    assert.equal(await ackOf(acked, errors), 2);
    assert.deepEqual(doc.data, { text: 'b' });
    assert.deepEqual(errors, []);
  });
});
