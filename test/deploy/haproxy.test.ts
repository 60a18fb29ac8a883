/**
 * deploy/haproxy.cfg, the load balancer of docker-compose.yml, checked by HAProxy itself
 * (`haproxy -c`) and then run for real in front of two local instances: the same file, with
 * the instance addresses given through its environment variables (TANDEM1_ADDR,
 * TANDEM2_ADDR, as compose's lb-pg does) and only the listening port rewritten for this host.
 *
 * The instances are server processes (`tandem serve`, drained by SIGTERM as Docker stops
 * them), sharing one store, once per store the compose deployments use: SQLite (standing in
 * for MongoDB, which is not obtainable here) and PostgreSQL (a fresh schema, dropped after).
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
import { PG_TEST_URL, postgresUnavailable, TestSchemas } from '../helpers/postgres.js';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { requireService } from '../helpers/skip.js';
import { commandAvailable, freePort } from '../helpers/system.js';
import { waitFor } from '../helpers/wait.js';

const CONFIG = fileURLToPath(new URL('../../deploy/haproxy.cfg', import.meta.url));
const INSTANCES = ['tandem1', 'tandem2'] as const;

const haproxyAvailable = () => commandAvailable('haproxy', ['-v']);

/** The compose config with `bind` pointed at this host (the servers come from the environment). */
function localConfig(port: number): string {
  const text = readFileSync(CONFIG, 'utf8');
  for (const name of INSTANCES) {
    assert.match(
      text,
      new RegExp(`^\\s*server\\s+${name}\\s+"\\$\\{${name.toUpperCase()}_ADDR\\}"`, 'm'),
      `deploy/haproxy.cfg: server ${name} at \${${name.toUpperCase()}_ADDR}`,
    );
  }
  return text.replace(/^(\s*bind\s+):8080\b/m, `$1127.0.0.1:${port}`);
}

/** Connected ShareDB agents of an instance (its socket.io clients; the server opens none). */
async function agents(server: ServerProcess): Promise<number> {
  const metrics = (await (await fetch(`${server.url}/metrics.json`)).json()) as { agents: number };
  return metrics.agents;
}

/** A store both instances share: the DB_URL for one test, and its cleanup. */
interface SharedStore {
  name: string;
  /** Why it cannot run here, or null. */
  unavailable(): Promise<string | null>;
  /** A fresh store for one test (`dir` is the test's temp folder). */
  dbUrl(dir: string): string;
  /** After the suite: drop what dbUrl created outside `dir`. */
  cleanup(): Promise<void>;
}

const schemas = new TestSchemas();

const STORES: SharedStore[] = [
  {
    // Both instances on one SQLite file, as instances of one deployment share one store.
    name: 'SQLite',
    unavailable: async () => null,
    dbUrl: (dir) => `sqlite:${join(dir, 'shared.db')}`,
    cleanup: async () => undefined,
  },
  {
    name: 'PostgreSQL',
    unavailable: () => postgresUnavailable(),
    dbUrl: () => {
      const url = new URL(PG_TEST_URL);
      url.searchParams.set('schema', schemas.name());
      return url.href;
    },
    cleanup: () => schemas.dropAll(),
  },
];

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

  for (const store of STORES) {
    describe(`in front of two local instances on ${store.name}`, function () {
      let dir = '';
      let lb: ChildProcess | null = null;
      let lbUrl = '';
      const servers: ServerProcess[] = [];
      const clients: SocketConnection[] = [];

      before(async function () {
        const reason = await store.unavailable();
        requireService(this, reason === null, reason ?? '');
      });

      after(() => store.cleanup());

      beforeEach(async () => {
        dir = mkdtempSync(join(tmpdir(), 'tandem-lb-'));
        const env = { DB_URL: store.dbUrl(dir), SHUTDOWN_TIMEOUT_MS: '2000' };
        servers.push(...(await Promise.all(INSTANCES.map(() => startServerProcess(env)))));
        const port = await freePort();
        const file = join(dir, 'haproxy.cfg');
        writeFileSync(file, localConfig(port));
        const addresses = Object.fromEntries(INSTANCES.map((name, i) => [`${name.toUpperCase()}_ADDR`, new URL(servers[i]!.url).host]));
        lb = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...addresses } });
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
        await Promise.all(servers.splice(0).map((s) => s.stop()));
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
        const counts = await Promise.all(servers.map(agents));
        assert.ok(
          counts.every((n) => n > 0),
          `round-robin put sessions on both instances (${counts.join(', ')})`,
        );
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
        const [first, second] = servers as [ServerProcess, ServerProcess];
        assert.ok((await agents(first)) > 0);
        // SIGTERM, as `docker compose stop` sends: the instance drains and exits 0.
        assert.equal(await first.stop(), 0, `drained instance's exit code\n${first.stderr()}`);
        servers.splice(0, 1);
        await waitFor(async () => (await agents(second)) === polling.length && polling.every((c) => c.connection.state === 'connected'), {
          timeoutMs: 15_000,
          what: 'every client reconnected to the remaining instance',
        });
        await Promise.all(polling.map((c, i) => edit(c, `drain-${i}`)));
      });
    });
  }
});
