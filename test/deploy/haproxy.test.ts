/**
 * deploy/haproxy.cfg, the load balancer of docker-compose.yml, checked by HAProxy itself
 * (`haproxy -c`) and then run for real in front of two local instances: the same file,
 * with only the instance addresses and the listening port rewritten for this host.
 *
 * Shows: WebSocket upgrades pass; socket.io long-polling sessions stick to one instance
 * through HAProxy's cookie (and break without it, the control); new sessions are spread
 * over the instances; a draining instance's clients come back through HAProxy to the other.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SocketConnection } from '../../client/connect.js';
import { ops } from '../../ot-types/index.js';
import { create, socketClient, submit, subscribe } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import { commandAvailable, freePort } from '../helpers/system.js';
import { waitFor } from '../helpers/wait.js';

const CONFIG = fileURLToPath(new URL('../../deploy/haproxy.cfg', import.meta.url));

const haproxyAvailable = () => commandAvailable('haproxy', ['-v']);

/** The compose config with `bind` and the `server` addresses pointed at this host. */
function localConfig(port: number, instances: Record<string, number>): string {
  let text = readFileSync(CONFIG, 'utf8').replace(/^(\s*bind\s+):8080\b/m, `$1127.0.0.1:${port}`);
  for (const [name, instancePort] of Object.entries(instances)) {
    const line = new RegExp(`^(\\s*server\\s+${name}\\s+)${name}:8080\\b`, 'm');
    assert.match(text, line, `deploy/haproxy.cfg has no server line for ${name}`);
    text = text.replace(line, `$1127.0.0.1:${instancePort}`);
  }
  return text;
}

describe('deploy: HAProxy config (deploy/haproxy.cfg)', function () {
  this.timeout(30_000);

  before(function () {
    requireService(this, haproxyAvailable(), 'haproxy not installed (Debian package haproxy)');
  });

  it('passes `haproxy -c`', () => {
    // Outside Docker the instance names do not resolve: HAProxy warns and, thanks to
    // `init-addr none`, still accepts the file. Anything else fails the check.
    const out = execFileSync('haproxy', ['-c', '-f', CONFIG], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(out, /Configuration file is valid/);
  });

  describe('in front of two local instances', function () {
    let dir = '';
    let lb: ChildProcess | null = null;
    let lbUrl = '';
    const servers: TestServer[] = [];
    const clients: SocketConnection[] = [];

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'tandem-lb-'));
      // Both instances on one SQLite file, as instances of one deployment share one store.
      const env = { DB_URL: `sqlite:${join(dir, 'shared.db')}` };
      servers.push(await startTestServer(env));
      servers.push(await startTestServer(env));
      const port = await freePort();
      const file = join(dir, 'haproxy.cfg');
      writeFileSync(file, localConfig(port, { tandem1: servers[0]!.port, tandem2: servers[1]!.port }));
      lb = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      lb.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      lbUrl = `http://127.0.0.1:${port}`;
      await waitFor(
        async () => {
          if (lb!.exitCode !== null) throw new Error(`haproxy exited: ${stderr}`);
          return (await fetch(`${lbUrl}/readyz`).catch(() => null))?.ok;
        },
        { timeoutMs: 10_000, what: 'HAProxy answering /readyz' },
      );
    });

    afterEach(async () => {
      for (const c of clients.splice(0)) c.close();
      if (lb && lb.exitCode === null && lb.signalCode === null) {
        const exited = once(lb, 'exit');
        lb.kill('SIGKILL');
        await exited;
      }
      lb = null;
      for (const s of servers.splice(0)) await s.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });

    function client(transport: 'websocket' | 'polling', keepCookies = true): SocketConnection {
      const c = socketClient(lbUrl, { transports: [transport], socketOptions: { withCredentials: keepCookies } });
      clients.push(c);
      return c;
    }

    async function edit(c: SocketConnection, id: string): Promise<void> {
      const doc = c.connection.get('lb', id);
      await subscribe(doc);
      if (doc.type === null) await create(doc, { n: 0 });
      for (let i = 0; i < 5; i++) await submit(doc, ops.add(['n'], 1));
    }

    it('passes WebSocket upgrades and keeps long-polling sessions on one instance, spreading sessions over both', async () => {
      const polling = [0, 1, 2, 3].map(() => client('polling'));
      const websocket = [0, 1].map(() => client('websocket'));
      await Promise.all([...polling, ...websocket].map((c, i) => edit(c, `doc-${i}`)));
      for (const c of polling) assert.equal(c.shim.transport, 'polling');
      for (const c of websocket) assert.equal(c.shim.transport, 'websocket');
      // Long polls were never sent to an instance that did not know the session.
      const reconnects = polling.filter((c) => c.connection.state !== 'connected');
      assert.deepEqual(reconnects, []);
      assert.ok(servers.every((s) => s.io.engine.clientsCount > 0), 'round-robin put sessions on both instances');
    });

    it('control: without the cookie, a long-polling session cannot survive round-robin', async () => {
      const c = client('polling', false);
      const errors: unknown[] = [];
      const shareDbHandler = c.shim.onerror;
      c.shim.onerror = (err) => {
        errors.push(err);
        shareDbHandler?.(err);
      };
      // Connecting needs the handshake and the next poll on the same instance; round-robin
      // alternates, so it keeps failing ("Session ID unknown") without stickiness.
      await waitFor(() => errors.length >= 3, { timeoutMs: 10_000, what: 'three failed connection attempts' });
      assert.notEqual(c.connection.state, 'connected');
    });

    it('sends the clients of a draining instance back through HAProxy to the other one', async () => {
      const polling = [0, 1, 2, 3].map(() => client('polling'));
      await Promise.all(polling.map((c, i) => edit(c, `drain-${i}`)));
      const [first, second] = servers as [TestServer, TestServer];
      assert.ok(first.io.engine.clientsCount > 0);
      await first.close();
      servers.splice(0, 1);
      await waitFor(() => second.io.engine.clientsCount === polling.length && polling.every((c) => c.connection.state === 'connected'), {
        timeoutMs: 15_000,
        what: 'every client reconnected to the remaining instance',
      });
      await Promise.all(polling.map((c, i) => edit(c, `drain-${i}`)));
    });
  });
});
