import assert from 'node:assert/strict';
import { TandemErrorCode } from '../../client/index.js';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { sdkClient } from '../helpers/sdk-clients.js';
import { startTestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

describe('sdk: a server it cannot reach is reported, not silent', function () {
  this.timeout(20_000);
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it('a wrong URL: state goes offline and one TANDEM_CONNECT_FAILED error is emitted while it keeps retrying', async () => {
    // Something that accepts and drops every connection: each attempt fails, and is counted.
    let attempts = 0;
    const dropper = createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
    const port = (dropper.address() as AddressInfo).port;
    const client = sdkClient(`http://127.0.0.1:${port}`, closers);
    const codes: string[] = [];
    client.on('error', (e) => codes.push(e.code));
    const doc = client.doc('notes', 'unreachable');
    let settled = false;
    void doc.ready.then(
      () => (settled = true),
      () => (settled = true),
    );
    await waitFor(() => client.state === 'offline' && codes.length > 0, { what: 'the failure to be reported' });
    assert.deepEqual(codes, [TandemErrorCode.CONNECT_FAILED]);
    // Several more attempts fail (20-200 ms backoff): still reported once.
    const seen = attempts;
    await waitFor(() => attempts >= seen + 5, { what: 'five more attempts' });
    assert.deepEqual(codes, [TandemErrorCode.CONNECT_FAILED]);
    assert.equal(client.state, 'offline');
    assert.equal(settled, false, 'ready waits for a server (the error event says why)');
    await new Promise<void>((resolve) => dropper.close(() => resolve()));

    // The server comes up on that port: the client connects, loads, and a later outage is reported again.
    const server = await startTestServer({ PORT: String(port) });
    closers.unshift(() => server.close());
    await client.whenOnline();
    await doc.ready;
    assert.equal(client.state, 'online');
  });
});
