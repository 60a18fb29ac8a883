/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs on these
 * machines or in CI): `docker-compose config` (Debian's docker-compose 1.29) validates the
 * file against the Compose schema and resolves anchors and paths; the resolved config is
 * then checked for what the deployment promises. The Dockerfile is checked statically; what
 * its final command runs is started for real by bundle.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { loadConfig } from '../../server/config.js';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { requireService } from '../helpers/skip.js';
import { commandAvailable } from '../helpers/system.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const dockerComposeAvailable = () => commandAvailable('docker-compose', ['version']);

interface Service {
  image?: string;
  build?: { context: string };
  environment?: Record<string, string>;
  healthcheck?: { test: string[] | string };
  depends_on?: Record<string, { condition: string }>;
  ports?: Array<{ published: number | string; target: number }>;
  volumes?: string[];
  stop_grace_period?: string;
}

/** `docker-compose config` prints YAML; Debian's docker-compose depends on python3-yaml for /usr/bin/python3 (not a pyenv python). */
/** The secret an operator must provide: the compose file refuses to resolve without it. */
const COMPOSE_ENV = { ...process.env, TANDEM_JWT_SECRET: 'compose-test-secret-0123456789abcdef' };

function resolvedConfig(): { services: Record<string, Service> } {
  const yaml = execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT, encoding: 'utf8', env: COMPOSE_ENV });
  const json = execFileSync('/usr/bin/python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], {
    input: yaml,
    encoding: 'utf8',
  });
  return JSON.parse(json) as { services: Record<string, Service> };
}

function seconds(duration: string | undefined): number {
  const match = /^(\d+)(ms|s|m)$/.exec(duration ?? '');
  if (!match) return 0;
  const value = Number(match[1]);
  return match[2] === 'ms' ? value / 1000 : match[2] === 'm' ? value * 60 : value;
}

describe('deploy: docker-compose.yml', function () {
  this.timeout(30_000);

  before(function () {
    requireService(this, dockerComposeAvailable(), 'docker-compose not installed (Debian package docker-compose)');
  });

  it('passes `docker-compose config` validation', () => {
    // Throws (non-zero exit, schema errors on stderr) when the file is invalid.
    execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '--quiet'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: COMPOSE_ENV });
  });

  it('runs MongoDB, Redis, two or more Tandem instances built from this repo, and a load balancer on :8080', () => {
    const { services } = resolvedConfig();
    const instances = Object.entries(services).filter(([, s]) => s.build?.context.replace(/\/$/, '') === ROOT.replace(/\/$/, ''));
    assert.ok(instances.length >= 2, `expected ≥ 2 Tandem instances, found ${instances.map(([n]) => n).join(', ')}`);
    assert.match(services.mongo?.image ?? '', /^mongo:/);
    assert.match(services.redis?.image ?? '', /^redis:/);
    for (const name of ['mongo', 'redis']) assert.ok(services[name]!.healthcheck, `${name} has a health check`);

    for (const [name, s] of instances) {
      const env = s.environment ?? {};
      assert.equal(env.HOST, '0.0.0.0', `${name} listens on all interfaces`);
      // A public bind refuses to start without authentication (server/config.ts).
      assert.equal(env.AUTH_JWT_SECRET, COMPOSE_ENV.TANDEM_JWT_SECRET, `${name} takes its JWT secret from TANDEM_JWT_SECRET`);
      assert.doesNotThrow(() => loadConfig(env), `${name}'s environment is a valid Tandem config`);
      assert.match(env.DB_URL ?? '', /^mongodb:\/\/mongo:27017\//, `${name} uses the MongoDB service`);
      assert.match(env.REDIS_URL ?? '', /^redis:\/\/redis:6379/, `${name} uses the Redis service`);
      assert.ok(env.REDIS_PREFIX, `${name} sets a Redis channel prefix`);
      assert.match(JSON.stringify(s.healthcheck?.test), /\/readyz/, `${name} health check hits /readyz`);
      assert.equal(s.depends_on?.mongo?.condition, 'service_healthy');
      assert.equal(s.depends_on?.redis?.condition, 'service_healthy');
      // Docker sends SIGKILL after stop_grace_period: it must outlast the drain.
      const drainSeconds = Number(env.SHUTDOWN_TIMEOUT_MS ?? 10_000) / 1000;
      assert.ok(seconds(s.stop_grace_period) > drainSeconds, `${name}: stop_grace_period ${s.stop_grace_period} ≤ drain ${drainSeconds} s`);
    }

    const [lbName, lb] = Object.entries(services).find(([, s]) => /haproxy|nginx/.test(s.image ?? '')) ?? [];
    assert.ok(lb, 'a load balancer service');
    assert.ok(
      lb.ports?.some((p) => String(p.published) === '8080'),
      `${lbName} publishes port 8080`,
    );
    assert.ok(lb.volumes?.some((v) => v.includes('deploy/haproxy.cfg')), `${lbName} mounts deploy/haproxy.cfg`);
    for (const [name] of instances) assert.equal(lb.depends_on?.[name]?.condition, 'service_healthy', `${lbName} waits for ${name}`);

    // The balancer routes to exactly the instances compose runs.
    const haproxy = readFileSync(`${ROOT}deploy/haproxy.cfg`, 'utf8');
    const routed = [...haproxy.matchAll(/^\s*server\s+\S+\s+([\w-]+):8080\b/gm)].map((m) => m[1]).sort();
    assert.deepEqual(routed, instances.map(([n]) => n).sort());
  });

  it('builds the image in two stages from the lock file and runs the bundle as an unprivileged user', () => {
    const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
    const froms = dockerfile.match(/^FROM\s+\S+/gm) ?? [];
    assert.ok(froms.length >= 2, 'multi-stage build');
    assert.match(dockerfile, /^FROM\s+\S+\s+AS\s+build$/m);
    assert.match(dockerfile, /^RUN npm ci\b/m);
    assert.match(dockerfile, /npm run build/);
    assert.match(dockerfile, /npm prune --omit=dev/);
    assert.match(dockerfile, /^COPY --from=build \/app\/dist /m);
    assert.match(dockerfile, /HOST=0\.0\.0\.0/);
    assert.match(dockerfile, /^USER node$/m);
    assert.match(dockerfile, /^HEALTHCHECK [\s\S]*\/readyz/m);
    assert.match(dockerfile, /^CMD \["node", "bin\/tandem\.js", "serve"\]$/m);
    // Every path copied from the build context exists.
    for (const [, sources] of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const source of sources!.split(/\s+/)) assert.ok(existsSync(`${ROOT}${source}`), `COPY source ${source} exists`);
    }
    const ignored = readFileSync(`${ROOT}.dockerignore`, 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(entry), `.dockerignore lists ${entry}`);
    // The build script the image runs is the one this repo uses.
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts.build ?? '', /scripts\/build\.mjs/);
  });
});
