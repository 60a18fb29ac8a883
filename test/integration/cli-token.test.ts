import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jwtVerify } from 'jose';
import { Connection } from 'sharedb/lib/client/index.js';
import WebSocket from 'ws';
import { SHAREDB_WS_PATH, TOKEN_QUERY_PARAM } from '../../client/protocol.js';
import { registerTandemTypes } from '../../ot-types/index.js';
import { TEST_JWT_SECRET } from '../helpers/auth.js';
import { create, fetchDoc } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/tandem.js');
const KEY = new TextEncoder().encode(TEST_JWT_SECRET);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built bin with `env` on top of this process's environment minus any AUTH_* setting. */
function tandem(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTH_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...base, ...env }, encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

async function mint(args: string[], env: Record<string, string> = { AUTH_JWT_SECRET: TEST_JWT_SECRET }): Promise<string> {
  const run = await tandem(['token', ...args], env);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr, '');
  return run.stdout.trim();
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('tandem token (the built package bin)', function () {
  this.timeout(60_000);

  before(() => {
    execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--if-needed'], { cwd: ROOT, stdio: 'pipe' });
  });

  it('prints an HS256 token with the sub, typed claims and exp = now + ttl, signed with AUTH_JWT_SECRET', async () => {
    const token = await mint([
      '--sub',
      'alice',
      '--claim',
      'role=editor',
      '--claim',
      'tenant=acme',
      '--claim',
      'level=3',
      '--claim',
      'tags=["a","b"]',
      '--claim',
      'admin=false',
      '--ttl',
      '1h',
    ]);
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'one line, a compact JWS');
    const { payload, protectedHeader } = await jwtVerify(token, KEY, { algorithms: ['HS256'] });
    assert.equal(protectedHeader.alg, 'HS256');
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.role, 'editor');
    assert.equal(payload.tenant, 'acme');
    assert.equal(payload.level, 3);
    assert.deepEqual(payload.tags, ['a', 'b']);
    assert.equal(payload.admin, false);
    assert.ok(Math.abs(payload.exp! - (nowSeconds() + 3600)) <= 10, `exp ${payload.exp} ≈ now + 1h`);
    assert.equal(payload.exp! - payload.iat!, 3600);
  });

  it('takes every ttl form, --secret over the variable, and AUTH_JWT_ISSUER / AUTH_JWT_AUDIENCE when set', async () => {
    const ttls = [
      ['30s', 30],
      ['15m', 900],
      ['7d', 604_800],
      ['90', 90],
    ] as const;
    await Promise.all(
      ttls.map(async ([ttl, seconds]) => {
        const { payload } = await jwtVerify(await mint(['--sub', 'bob', '--ttl', ttl]), KEY);
        assert.equal(payload.exp! - payload.iat!, seconds, `--ttl ${ttl}`);
      }),
    );
    const other = 'another-secret-of-at-least-32-bytes!!';
    const flagWins = await mint(['--sub', 'bob', '--secret', other], { AUTH_JWT_SECRET: TEST_JWT_SECRET });
    await jwtVerify(flagWins, new TextEncoder().encode(other));
    await assert.rejects(jwtVerify(flagWins, KEY));
    const scoped = await mint(['--sub', 'carol'], {
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      AUTH_JWT_ISSUER: 'https://id.example',
      AUTH_JWT_AUDIENCE: 'tandem',
    });
    const { payload } = await jwtVerify(scoped, KEY, { issuer: 'https://id.example', audience: 'tandem' });
    assert.equal(payload.sub, 'carol');
    assert.equal(payload.exp! - payload.iat!, 3600, 'default ttl 1h');
  });

  it('refuses a missing secret or sub, a bad ttl or claim, and a short secret: TANDEM_BAD_CONFIG on stderr, exit 1', async () => {
    const secret = { AUTH_JWT_SECRET: TEST_JWT_SECRET };
    const cases: Array<[args: string[], env: Record<string, string>, message: RegExp]> = [
      [['--sub', 'alice'], {}, /no secret: set AUTH_JWT_SECRET or pass --secret/],
      [[], secret, /--sub is required/],
      [['--sub', 'alice', '--ttl', '1y'], secret, /--ttl must be/],
      [['--sub', 'alice', '--ttl', '0'], secret, /--ttl must be/],
      [['--sub', 'alice', '--ttl', 'soon'], secret, /--ttl must be/],
      [['--sub', 'alice'], { AUTH_JWT_SECRET: 'too-short' }, /AUTH_JWT_SECRET must be at least 32 bytes/],
      [['--sub', 'alice', '--secret', 'too-short'], secret, /AUTH_JWT_SECRET must be at least 32 bytes/],
      [['--sub', 'alice', '--claim', 'novalue'], secret, /--claim must be key=value/],
      [['--sub', 'alice', '--claim', 'sub=mallory'], secret, /set "sub" with --sub/],
    ];
    const runs = await Promise.all(cases.map(([args, env]) => tandem(['token', ...args], env)));
    runs.forEach((run, i) => {
      const [args, , message] = cases[i]!;
      const what = `tandem token ${args.join(' ')}`;
      assert.equal(run.status, 1, `${what}: exit 1`);
      assert.equal(run.stdout, '', `${what}: no token printed`);
      assert.match(run.stderr, /^tandem: TANDEM_BAD_CONFIG: /, what);
      assert.match(run.stderr, message, what);
    });
  });

  describe('against a server with that secret', () => {
    let server: TestServer;
    const sockets: WebSocket[] = [];

    beforeEach(async () => {
      server = await startTestServer({ AUTH_JWT_SECRET: TEST_JWT_SECRET });
    });
    afterEach(async () => {
      for (const socket of sockets.splice(0)) socket.terminate();
      await server.close();
    });

    const open = (token: string) => {
      const url = new URL(server.url.replace(/^http/, 'ws') + SHAREDB_WS_PATH);
      url.searchParams.set(TOKEN_QUERY_PARAM, token);
      const socket = new WebSocket(url);
      // A refused upgrade (and terminate() while connecting) emits 'error': expected here.
      socket.on('error', () => {});
      sockets.push(socket);
      return socket;
    };

    it('accepts the minted token over /sharedb (?token=), and refuses one signed with another secret', async () => {
      registerTandemTypes();
      // ws's WebSocket is what ShareDB's README passes; its typings differ from the DOM's.
      const connect = async (sub: string) =>
        new Connection(
          open(await mint(['--sub', sub, '--claim', 'role=editor', '--ttl', '15m'])) as unknown as ConstructorParameters<
            typeof Connection
          >[0],
        );
      const [alice, bob] = [await connect('alice'), await connect('bob')];
      await create(alice.get('notes', 'minted'), { by: 'cli' });
      const reader = bob.get('notes', 'minted');
      await fetchDoc(reader);
      assert.deepEqual(reader.data, { by: 'cli' });

      const forged = await mint(['--sub', 'alice', '--secret', 'not-the-server-secret-0123456789abcdef']);
      const [, response] = (await once(open(forged), 'unexpected-response')) as [unknown, IncomingMessage];
      assert.equal(response.statusCode, 401);
    });
  });
});
