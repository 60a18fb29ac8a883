/**
 * What the walkthrough does with each line of a README ```sh block. A line is recognised by
 * its command (never by its position in README), and a line no rule recognises is a test
 * failure: a new command in README has to be classified here before the walkthrough passes.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, ops } from '../../client/index.js';
import { loadConfig } from '../../server/config.js';
import { parseTtl } from '../../server/cli/token-command.js';
import { httpGet, socketIoHandshake } from '../helpers/auth-wire.js';
import { redisServerAvailable, type TestRedis } from '../helpers/redis-server.js';
import { requireService } from '../helpers/skip.js';
import { commandAvailable } from '../helpers/system.js';
import { ROOT, type ReadmeBlock } from './readme-blocks.js';
import { leadingAssignments, type ShellLine, type ShellSession, type StartedServer } from './shell-session.js';

export type Handling = 'run' | 'represented' | 'skipped';

export interface LineContext {
  readonly session: ShellSession;
  readonly line: ShellLine;
  readonly block: ReadmeBlock;
  readonly mocha: Mocha.Context;
  /** A line of the walkthrough's printed account. */
  log(message: string): void;
  /** A Redis for instances that need one (our own redis-server on a free port). */
  redis(): Promise<TestRedis>;
}

export interface LinePlan {
  readonly handling: Handling;
  /** How the line is run, or why it is not. Printed by the test. */
  readonly how: string;
  /** Runs the line (or, for a skipped one, the checks that still apply to it). */
  run(ctx: LineContext): Promise<void>;
}

type Rule = (line: ShellLine, block: ReadmeBlock) => LinePlan | null;

/** The walkthrough's shortened load runs (the README's own take 20 s measured + 5 s each). */
const LOAD_SHORTENING = '--duration 2s --warmup 500ms --ramp 500ms';

function composeServices(): Set<string> {
  const text = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
  const section = text.slice(text.search(/^services:/m));
  return new Set([...section.matchAll(/^ {2}([\w-]+):\s*$/gm)].map((m) => m[1]!));
}

/** The service a `docker compose <sub> [flags] <service>` line names, if any. */
function composeService(command: string): string | null {
  const m = /^docker compose (run|stop|start|restart|logs|exec|kill|rm)\s+(.*)$/.exec(command);
  if (!m) return null;
  const service = m[2]!.split(/\s+/).find((word) => !word.startsWith('-'));
  return service ?? null;
}

async function expectOk(ctx: LineContext, command: string, timeoutMs?: number): Promise<string> {
  const result = await ctx.session.run(command, timeoutMs);
  assert.equal(result.code, 0, `\`${command}\` exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** The server of this session listening on `port`. */
function serverOn(session: ShellSession, port: number): StartedServer | undefined {
  return session.servers.find((s) => new URL(s.url).port === String(port));
}

/** Checks a started server answers its health routes, and what the line's comment claims. */
async function checkStarted(ctx: LineContext, server: StartedServer, expectedPort: number): Promise<void> {
  assert.equal(server.url, `http://127.0.0.1:${expectedPort}`, 'the server listens where the line says');
  assert.equal((await httpGet(server.url, '/healthz')).status, 200, 'GET /healthz');
  const ready = await httpGet(server.url, '/readyz');
  assert.equal(ready.status, 200, `GET /readyz: ${ready.body}`);
  const comment = ctx.session.substitute(ctx.line.comment);
  for (const [url] of comment.matchAll(/https?:\/\/[^\s,)]+/g)) {
    assert.equal(new URL(url).origin, server.url, `the comment's address (${url})`);
  }
  for (const [, port] of comment.matchAll(/(?<![\w./]):(\d{2,5})\b/g)) {
    assert.equal(new URL(server.url).port, port, `the comment's port (:${port})`);
  }
  const data = /\bdata in (\S+?)[,.;]?(?:\s|$)/.exec(comment);
  if (data) {
    // The test redirects DB_URL; the path the comment names must be the default it replaced.
    assert.equal(loadConfig({}).dbUrl, `sqlite:${data[1]}`, 'the default store is where the comment says');
    const file = ctx.session.env.DB_URL!.slice('sqlite:'.length);
    assert.ok(existsSync(file), `the store file was created (${file})`);
  }
}

const npmInstall: Rule = ({ command }) =>
  command === 'npm install'
    ? {
        handling: 'represented',
        how:
          'represented by `npm install --dry-run --offline`: a real install downloads from the public registry (this test ' +
          'sends nothing off the machine) and takes minutes; the dry run still reads package.json and package-lock.json ' +
          'and fails on a tree npm cannot resolve',
        run: async (ctx) => {
          const out = await expectOk(ctx, 'npm install --dry-run --offline --no-audit --no-fund', 120_000);
          ctx.log(`npm: ${out.trim().split('\n').pop() ?? ''}`);
        },
      }
    : null;

/** A local Redis a line names: ours stands in for it (requires redis-server; CI fails without). */
async function provideRedis(ctx: LineContext): Promise<string> {
  requireService(ctx.mocha, redisServerAvailable(), 'redis-server (apt-get install redis-server) for instances with REDIS_URL');
  const redis = await ctx.redis();
  ctx.session.redisUrl = redis.url;
  return redis.url;
}

const npmStart: Rule = ({ command }) => {
  const m = /^((?:[A-Za-z_]\w*=\S*\s+)*)npm start(\s*&)?$/.exec(command);
  if (!m) return null;
  const background = m[2] !== undefined;
  const configCheck = m[1] ? `; its configuration as written (${m[1].trim()}) must pass the server's config parser` : '';
  return {
    handling: 'run',
    how:
      (background
        ? 'started as a process (npm start builds dist/ when sources changed, as documented); the following lines run once it ' +
          'logs where it listens; after the block SIGTERM to the server, and npm must exit 0'
        : 'runs until Ctrl-C: started as a process, checked (healthz, readyz, the address and data path its comment gives), ' +
          'then Ctrl-C (SIGINT to its process group): the server must log `tandem stopped` and every process exit') + configCheck,
    run: async (ctx) => {
      const { session } = ctx;
      const { assignments } = leadingAssignments(command);
      if (/redis:\/\//.test(command)) await provideRedis(ctx);
      // The configuration as written (public HOST included) must be one the server accepts.
      loadConfig({ ...session.env, ...assignments });
      const substituted = session.substitute(command.replace(/\s*&$/, ''));
      const port = Number(leadingAssignments(substituted).assignments.PORT ?? session.env.PORT);
      const server = await session.start(substituted);
      ctx.log(`listening: ${server.url} (auth ${server.auth})`);
      await checkStarted(ctx, server, port);
      if (!background) await session.interrupt(server);
    },
  };
};

const npmTest: Rule = ({ command, comment }) =>
  command === 'npm test'
    ? {
        handling: 'skipped',
        how:
          'not run: `npm test` runs every test file, this walkthrough included (it would recurse), for tens of minutes; ' +
          'checked instead: the `test` script and mocha setup are what the comment says',
        run: async () => {
          const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
          const script = pkg.scripts.test ?? '';
          if (/tsc --noEmit/.test(comment))
            assert.match(script, /\btsc --noEmit\b.*&&.*\bmocha\b/, `scripts.test type-checks first: ${script}`);
          if (/\bbiome\b/.test(comment)) {
            assert.match(script, /^npm run lint && /, `scripts.test lints first: ${script}`);
            assert.match(pkg.scripts.lint ?? '', /^biome (ci|lint) \.$/, 'scripts.lint runs biome over the repository');
          }
          if (/\bmocha\b/.test(comment)) assert.match(script, /\bmocha\b/, 'scripts.test runs mocha');
          if (/\btsx\b/.test(comment)) {
            const mocharc = readFileSync(join(ROOT, '.mocharc.json'), 'utf8');
            assert.match(mocharc, /import=tsx/, 'mocha loads TypeScript through tsx');
          }
        },
      }
    : null;

const exportLine: Rule = ({ command }, block) => {
  const m = /^export ([A-Za-z_]\w*)=(.+)$/.exec(command);
  if (!m) return null;
  const name = m[1]!;
  const forCompose = /^docker compose /m.test(block.code);
  return {
    handling: 'run',
    how:
      `run in the block's shell; ${name} is kept for the following lines` + (forCompose ? ' and must be read by docker-compose.yml' : ''),
    run: async (ctx) => {
      await expectOk(ctx, ctx.session.substitute(command));
      const value = ctx.session.env[name] ?? '';
      assert.ok(value.length > 0, `${name} is set`);
      // README: an HS256 secret has at least 32 bytes (the server refuses shorter ones).
      if (/SECRET/.test(name))
        assert.ok(Buffer.byteLength(value) >= 32, `${name} has ${Buffer.byteLength(value)} bytes, at least 32 needed`);
      if (forCompose)
        assert.ok(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8').includes(`\${${name}`), `docker-compose.yml reads ${name}`);
    },
  };
};

/** `--flag value` pairs of a command line (quotes not needed by README's commands). */
function flagValues(command: string, flag: string): string[] {
  return [...command.matchAll(new RegExp(`(?:^|\\s)${flag}\\s+(\\S+)`, 'g'))].map((m) => m[1]!);
}

const tandemCli: Rule = ({ command }) => {
  const m = /^node bin\/tandem\.js (\w+)\b/.exec(command);
  if (!m || m[1] === 'serve') return null;
  const token = m[1] === 'token';
  return {
    handling: 'run',
    how: token ? 'run; what it prints must be a JWT with the --sub, --claim and --ttl given' : 'run; must exit 0',
    run: async (ctx) => {
      const out = (await expectOk(ctx, ctx.session.substitute(command))).trim();
      if (!token) return;
      assert.match(out, /^[\w-]+\.[\w-]+\.[\w-]+$/, `one compact JWT printed, got ${JSON.stringify(out)}`);
      const payload = JSON.parse(Buffer.from(out.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
      const [sub] = flagValues(command, '--sub');
      if (sub !== undefined) assert.equal(payload.sub, sub, 'sub');
      for (const pair of flagValues(command, '--claim')) {
        const [key, raw] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
        let value: unknown = raw;
        try {
          value = JSON.parse(raw);
        } catch {
          // README: the value is JSON when it parses, else a string
        }
        assert.deepEqual(payload[key], value, `claim ${key}`);
      }
      const [ttl] = flagValues(command, '--ttl');
      if (ttl !== undefined) assert.equal(Number(payload.exp) - Number(payload.iat), parseTtl(ttl), `--ttl ${ttl}`);
      ctx.log(`token for sub ${String(payload.sub)}`);
    },
  };
};

/** `# open http://…/?token=<that token>`: what a reader does next, done by the test. */
const openComment: Rule = ({ command, comment }) => {
  const m = /^open\s+(https?:\/\/.*)$/.exec(comment);
  if (command !== '' || !m) return null;
  return {
    handling: 'run',
    how:
      'done as a browser would: the page is fetched, then an SDK client (what the demo page runs) connects with the ' +
      'token from the URL and the page origin as `Origin`, opens a document and writes; with authentication on, a ' +
      'connection without a token must be refused',
    run: async (ctx) => {
      const token = ctx.session.lastStdout.trim();
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a token printed by an earlier line');
      const url = new URL(ctx.session.substitute(m[1]!.trim()).replace(/<[^>]*token[^>]*>/, token));
      const server = serverOn(ctx.session, Number(url.port));
      assert.ok(server, `a server this block started listens on ${url.origin}`);
      const page = await httpGet(url.origin, url.pathname + url.search);
      assert.equal(page.status, 200, `GET ${url.pathname}${url.search}`);
      assert.match(String(page.headers['content-type']), /text\/html/);
      const pageToken = url.searchParams.get('token');
      assert.equal(pageToken, token, 'the URL carries the token');
      const client = connect({
        url: url.origin,
        getToken: () => pageToken,
        locks: null,
        socketOptions: { extraHeaders: { origin: url.origin } },
      });
      // A refusal (a wrong CORS_ORIGINS, a token the server rejects) fails the line at once, with its code.
      const refused = new Promise<never>((_, reject) =>
        client.on('error', (err) => reject(new Error(`the page's client was refused: ${err.code}: ${err.message}`))),
      );
      refused.catch(() => undefined);
      try {
        const doc = client.doc('notes', 'readme-open', { create: { title: '' } });
        await Promise.race([withDeadline(doc.ready, 15_000, 'the document to open with the token'), refused]);
        doc.submit(ops.textInsert(['title'], 0, 'opened'));
        await Promise.race([withDeadline(doc.whenSynced(), 15_000, 'the edit to be acknowledged'), refused]);
      } finally {
        await client.close();
      }
      if (server.auth === 'jwt') {
        const anonymous = await socketIoHandshake(url.origin, {}, ['websocket'], { origin: url.origin });
        if (anonymous.kind === 'connected') anonymous.socket.disconnect();
        assert.equal(anonymous.kind === 'refused' ? anonymous.code : 'connected', 'TANDEM_UNAUTHENTICATED', 'no token, no connection');
      }
      ctx.log(
        `opened ${url.origin}${url.pathname} with the token; ${server.auth === 'jwt' ? 'tokenless connection refused' : 'no authentication'}`,
      );
    },
  };
};

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const dockerEngine: Rule = ({ command, comment }) => {
  const engine =
    /^docker (run|build|pull|push|exec|start|stop|ps)\b/.test(command) ||
    /^docker compose (up|run|ps|stop|start|restart|down|logs|exec|build|pull|kill|rm)\b/.test(command);
  if (!engine) return null;
  const alternative = /^or:\s*(\S+)/.exec(comment)?.[1];
  const altNote = alternative
    ? `; the alternative in its comment (\`${alternative}\`) is ${commandAvailable('sh', ['-c', `command -v ${alternative}`]) ? 'installed but would need a data folder and port of its own: not run' : 'not installed here'}`
    : '';
  return {
    handling: 'skipped',
    how:
      `not run: needs the Docker engine${altNote}` +
      (composeService(command) ? '; checked: the service it names is in docker-compose.yml' : ''),
    run: async () => {
      const service = composeService(command);
      if (service) assert.ok(composeServices().has(service), `docker-compose.yml has a service ${service}`);
    },
  };
};

const openComposeStack: Rule = ({ command }, block) =>
  /^open\s/.test(command) && /^docker compose up\b/m.test(block.code)
    ? {
        handling: 'skipped',
        how: "not run: opens the demo through the compose stack's load balancer, which only exists with the Docker engine (and `open` is macOS's opener)",
        run: async () => undefined,
      }
    : null;

const mongoTests: Rule = ({ command }) => {
  const m = /^MONGO_URL=(\S+)\s+npx mocha\s+(.+)$/.exec(command);
  if (!m) return null;
  const files = m[2]!.trim().split(/\s+/);
  return {
    handling: 'skipped',
    how: `not run: needs a MongoDB server at ${m[1]} (the line above starts one with the Docker engine, or a mongod, ${commandAvailable('sh', ['-c', 'command -v mongod']) ? 'which would need a port of its own' : 'not installed here'}); checked: the test files exist and read MONGO_URL`,
    run: async () => {
      for (const file of files) {
        assert.ok(existsSync(join(ROOT, file)), `${file} exists`);
        assert.match(readFileSync(join(ROOT, file), 'utf8'), /MONGO_URL/, `${file} reads MONGO_URL`);
      }
    },
  };
};

const URL_FLAG = /(?:^|\s)(?:-u|--url)\s+(\S+)/g;

const loadRun: Rule = ({ command, comment }) => {
  if (!/^npm run load\b/.test(command)) return null;
  const alternative = /^or:\s*(npx tandem load)\b/.exec(comment)?.[1];
  const defaultTarget = [...command.matchAll(URL_FLAG)].length === 0;
  return {
    handling: 'run',
    how:
      `run with \`${LOAD_SHORTENING}\` appended (the last flag wins) to keep the walkthrough short and reports in the scratch ` +
      'folder (`-o`)' +
      (defaultTarget ? ', the default target (127.0.0.1:8080) given as `-u`' : '') +
      '; it must exit 0 with `convergence: PASS`' +
      (alternative ? `; the alternative \`${alternative}\` must answer --help` : ''),
    run: async (ctx) => {
      const { session } = ctx;
      let args = session.substitute(command);
      let urls = [...args.matchAll(URL_FLAG)].map((u) => u[1]!);
      if (urls.length === 0) {
        const target = `http://127.0.0.1:${session.port(8080)}`;
        session.substitutions.add(`load tool's default target http://127.0.0.1:8080 → -u ${target}`);
        args += ` -u ${target}`;
        urls = [target];
      }
      const missing = urls.filter((u) => !serverOn(session, Number(new URL(u).port)));
      if (missing.length) {
        // README gap: nothing in the block starts these. Start them as a reader must: instances
        // sharing the store and a Redis, so clients of one document on different instances converge.
        const redisUrl = await provideRedis(ctx);
        for (const url of missing) {
          const port = Number(new URL(url).port);
          const fill = `REDIS_URL=${redisUrl} PORT=${port} npm start`;
          const written = session.readmePort(port);
          const note =
            `README gap: no line of the block starts the server on ${written ? `:${written} (here :${port})` : url} that ` +
            `\`${command}\` loads; the test starts it as \`${fill}\` (our own redis-server; every instance shares the block's store)`;
          session.notes.push(note);
          ctx.log(`NOTE ${note}`);
          await session.start(fill);
        }
      }
      args += ` ${LOAD_SHORTENING} -o ${join(session.dir, 'load-results')}`;
      const out = await expectOk(ctx, args, 120_000);
      assert.match(out, /convergence: PASS/, out);
      ctx.log(out.split('\n').find((l) => l.startsWith('convergence:')) ?? '');
      if (alternative) await expectOk(ctx, `${alternative} --help`);
    },
  };
};

const benchRun: Rule = ({ command }) =>
  /^npm run bench\b/.test(command)
    ? {
        handling: 'represented',
        how:
          'represented by `npm run bench -- --help`: the paired suite runs for tens of minutes (its smoke variant alone for ' +
          'minutes; test/load/load-smoke.test.ts runs it)',
        run: async (ctx) => {
          const out = await expectOk(ctx, `${command.replace(/\s+--\s.*$/, '')} -- --help`);
          assert.match(out, /paired benchmark/);
        },
      }
    : null;

const floodRun: Rule = ({ command }) =>
  /^npm run flood\b/.test(command)
    ? {
        handling: 'represented',
        how:
          'represented by `npm run flood -- --help`: four load runs of ~25 s with an attacker (test/load/load-smoke.test.ts ' +
          'runs a short one)',
        run: async (ctx) => {
          const out = await expectOk(ctx, `${command.replace(/\s+--\s.*$/, '')} -- --help`);
          assert.match(out, /flood isolation/);
        },
      }
    : null;

const npmBuild: Rule = ({ command }) =>
  command === 'npm run build'
    ? {
        handling: 'run',
        how: 'run; must exit 0 (it writes dist/, as `npm start` does)',
        run: async (ctx) => void (await expectOk(ctx, command, 120_000)),
      }
    : null;

const PACKAGING_TEST = 'test/packaging/packages.test.ts';

/** `npm pack -w client`: the packaging test packs and installs each package as a user does. */
const npmPackClient: Rule = ({ command, comment }) =>
  command === 'npm pack -w client'
    ? {
        handling: 'represented',
        how: `represented by ${PACKAGING_TEST}, which runs npm pack for each package and installs the tarballs into a scratch project; here: the tarball name the comment gives is the package's`,
        run: async () => {
          const pkg = JSON.parse(readFileSync(join(ROOT, 'client/package.json'), 'utf8')) as { name: string; version: string };
          const tarball = `${pkg.name.replace(/^@/, '').replace('/', '-')}-${pkg.version}.tgz`;
          assert.ok(comment.includes(tarball), `the comment names ${tarball}`);
          assert.ok(existsSync(join(ROOT, PACKAGING_TEST)), `${PACKAGING_TEST} exists`);
        },
      }
    : null;

/** `npm install <tarball>` into the reader's own app. */
const npmInstallTarball: Rule = ({ command }) =>
  /^npm install \S+\.tgz$/.test(command)
    ? {
        handling: 'skipped',
        how: `the reader's own app: ${PACKAGING_TEST} installs the packed tarballs into a scratch project outside the repository`,
        run: async () => undefined,
      }
    : null;

/** A comment on a line of its own says nothing to run (`# open …` is handled above as an action). */
const commentOnly: Rule = ({ command }) =>
  command === '' ? { handling: 'skipped', how: 'a comment: nothing to run', run: async () => undefined } : null;

const RULES: readonly Rule[] = [
  npmInstall,
  npmPackClient,
  npmInstallTarball,
  npmStart,
  npmTest,
  exportLine,
  tandemCli,
  openComment,
  dockerEngine,
  openComposeStack,
  mongoTests,
  loadRun,
  benchRun,
  floodRun,
  npmBuild,
  commentOnly,
];

/** The plan for `line`, or null when no rule knows it (the walkthrough then fails). */
export function planLine(line: ShellLine, block: ReadmeBlock): LinePlan | null {
  for (const rule of RULES) {
    const plan = rule(line, block);
    if (plan) return plan;
  }
  return null;
}
