/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs on these
 * machines or in CI): `docker-compose config` (Debian's docker-compose 1.29) validates the
 * file against the Compose schema and resolves anchors and paths; the resolved config is
 * then checked for what each deployment promises — the default one on MongoDB, and the
 * `postgres` profile's on PostgreSQL — with every instance's environment parsed by the
 * server's own loadConfig. The Dockerfile is checked statically; what its final command runs
 * is started for real by bundle.test.ts, and deploy/haproxy.cfg by haproxy.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../server/config.js';
import { openStorage } from '../../server/storage/index.js';
import { parsePostgresUrl } from '../../server/storage/postgres-connection.js';
import { startTestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import { commandAvailable } from '../helpers/system.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const dockerComposeAvailable = () => commandAvailable('docker-compose', ['version']);

interface Service {
  image?: string;
  profiles?: string[];
  build?: { context: string };
  environment?: Record<string, string>;
  healthcheck?: { test: string[] | string };
  depends_on?: Record<string, { condition: string }>;
  ports?: Array<{ published: number | string; target: number }>;
  volumes?: string[];
  stop_grace_period?: string;
  entrypoint?: string[];
}

/** `docker-compose config` prints YAML; Debian's docker-compose depends on python3-yaml for /usr/bin/python3 (not a pyenv python). */
/** The secret an operator must provide: the compose file refuses to resolve without it. */
const COMPOSE_ENV = {
  ...process.env,
  TANDEM_JWT_SECRET: 'compose-test-secret-0123456789abcdef',
  TANDEM_METRICS_TOKEN: 'compose-test-metrics-token',
};

interface ResolvedCompose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** A YAML file of this repository as data (python3-yaml, as for `docker-compose config`). */
function yamlFile(path: string): unknown {
  const json = execFileSync('/usr/bin/python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], {
    input: readFileSync(`${ROOT}${path}`, 'utf8'),
    encoding: 'utf8',
  });
  return JSON.parse(json);
}

/** The container path a service mounts the repository's `source` at. */
function mountOf(service: Service, source: string): string | undefined {
  for (const volume of service.volumes ?? []) {
    const [from, to] = volume.split(':');
    if (from === source || from?.endsWith(`/${source.replace(/^\.\//, '')}`)) return to;
  }
  return undefined;
}

/** `docker-compose [--profile p] -f docker-compose.yml config` as data (every service: profiles do not filter `config`). */
function resolvedConfig(profile?: string): ResolvedCompose {
  const args = [...(profile ? ['--profile', profile] : []), '-f', 'docker-compose.yml', 'config'];
  const yaml = execFileSync('docker-compose', args, { cwd: ROOT, encoding: 'utf8', env: COMPOSE_ENV });
  const json = execFileSync('/usr/bin/python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], {
    input: yaml,
    encoding: 'utf8',
  });
  return JSON.parse(json) as ResolvedCompose;
}

function seconds(duration: string | undefined): number {
  const match = /^(\d+)(ms|s|m)$/.exec(duration ?? '');
  if (!match) return 0;
  const value = Number(match[1]);
  return match[2] === 'ms' ? value / 1000 : match[2] === 'm' ? value * 60 : value;
}

/** One deployment of the compose file: its load balancer, the store its instances use. */
interface Deployment {
  name: string;
  /** The profile that enables it; none: `docker compose up` runs it. */
  profile: string | null;
  lb: string;
  port: string;
  store: string;
  storeImage: RegExp;
  dbUrl: RegExp;
  /** More checks on one instance's parsed config. */
  checkConfig(name: string, config: ReturnType<typeof loadConfig>, services: Record<string, Service>): void;
}

const DEPLOYMENTS: Deployment[] = [
  {
    name: 'MongoDB (default)',
    profile: null,
    lb: 'lb',
    port: '8080',
    store: 'mongo',
    storeImage: /^mongo:/,
    dbUrl: /^mongodb:\/\/mongo:27017\//,
    checkConfig: () => undefined,
  },
  {
    name: 'PostgreSQL (profile postgres)',
    profile: 'postgres',
    lb: 'lb-pg',
    port: '8081',
    store: 'postgres',
    storeImage: /^postgres:15\b/,
    dbUrl: /^postgres:\/\/[^@/]+@postgres:5432\//,
    checkConfig: (name, config, services) => {
      // The credentials and database in DB_URL are the ones the postgres service creates.
      const pgEnv = services.postgres!.environment ?? {};
      const url = new URL(config.dbUrl);
      assert.equal(decodeURIComponent(url.username), pgEnv.POSTGRES_USER, `${name}: DB_URL user`);
      assert.equal(decodeURIComponent(url.password), pgEnv.POSTGRES_PASSWORD, `${name}: DB_URL password`);
      assert.equal(url.pathname, `/${pgEnv.POSTGRES_DB}`, `${name}: DB_URL database`);
      assert.equal(parsePostgresUrl(config.dbUrl).schema, 'tandem', `${name}: tables in schema tandem`);
    },
  },
];

/** The instances an HAProxy service routes to: deploy/haproxy.cfg's servers, addressed by the service's environment or the file's defaults. */
function routedInstances(lb: Service): string[] {
  const haproxy = readFileSync(`${ROOT}deploy/haproxy.cfg`, 'utf8');
  const defaults = Object.fromEntries([...haproxy.matchAll(/^\s*presetenv\s+(\w+)\s+(\S+)/gm)].map((m) => [m[1]!, m[2]!]));
  const servers = [...haproxy.matchAll(/^\s*server\s+\S+\s+"?\$\{(\w+)\}"?/gm)].map((m) => m[1]!);
  assert.ok(servers.length >= 2, 'deploy/haproxy.cfg has ≥ 2 server lines addressed by environment variables');
  return servers
    .map((variable) => {
      const address = lb.environment?.[variable] ?? defaults[variable];
      const match = /^([\w-]+):8080$/.exec(address ?? '');
      assert.ok(match, `${variable} = ${address}: expected <service>:8080`);
      return match[1]!;
    })
    .sort();
}

describe('deploy: docker-compose.yml', function () {
  this.timeout(30_000);

  before(function () {
    requireService(this, dockerComposeAvailable(), 'docker-compose not installed (Debian package docker-compose)');
  });

  for (const profile of [null, 'postgres']) {
    it(`passes \`docker-compose${profile ? ` --profile ${profile}` : ''} config\` validation`, () => {
      // Throws (non-zero exit, schema errors on stderr) when the file is invalid.
      const args = [...(profile ? ['--profile', profile] : []), '-f', 'docker-compose.yml', 'config', '--quiet'];
      execFileSync('docker-compose', args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: COMPOSE_ENV });
    });
  }

  it('keeps the PostgreSQL deployment out of `docker compose up`: all of it, and only it, is in the postgres profile', () => {
    const { services } = resolvedConfig();
    const inProfile = Object.entries(services)
      .filter(([, s]) => s.profiles?.includes('postgres'))
      .map(([n]) => n)
      .sort();
    assert.deepEqual(inProfile, ['lb-pg', 'postgres', 'tandem1-pg', 'tandem2-pg']);
    for (const name of ['mongo', 'redis', 'tandem1', 'tandem2', 'lb'])
      assert.equal(services[name]?.profiles, undefined, `${name} runs without a profile`);
  });

  for (const d of DEPLOYMENTS) {
    it(`${d.name}: its store, Redis, two or more Tandem instances built from this repo, and a load balancer on :${d.port}`, () => {
      const { services, volumes } = resolvedConfig(d.profile ?? undefined);
      const lb = services[d.lb];
      assert.ok(lb, `load balancer service ${d.lb}`);
      assert.match(lb.image ?? '', /haproxy/);
      assert.ok(
        lb.ports?.some((p) => String(p.published) === d.port),
        `${d.lb} publishes port ${d.port}`,
      );
      assert.ok(
        lb.volumes?.some((v) => v.includes('deploy/haproxy.cfg')),
        `${d.lb} mounts deploy/haproxy.cfg`,
      );

      // The balancer routes to exactly the instances it waits for, each built from this repo.
      const routed = routedInstances(lb);
      assert.ok(routed.length >= 2, `expected ≥ 2 Tandem instances behind ${d.lb}, found ${routed.join(', ')}`);
      assert.deepEqual(Object.keys(lb.depends_on ?? {}).sort(), routed, `${d.lb} waits for the instances it routes to`);
      const instances = routed.map((name) => [name, services[name]] as const);
      for (const name of routed)
        assert.equal(lb.depends_on?.[name]?.condition, 'service_healthy', `${d.lb} waits for ${name} to be healthy`);

      const store = services[d.store];
      assert.ok(store, `store service ${d.store}`);
      assert.match(store.image ?? '', d.storeImage);
      assert.match(services.redis?.image ?? '', /^redis:/);
      for (const name of [d.store, 'redis']) assert.ok(services[name]!.healthcheck, `${name} has a health check`);
      // The store keeps its data in a named volume that outlives the containers.
      const storeVolume = store.volumes?.map((v) => v.split(':')[0]!).find((v) => v in (volumes ?? {}));
      assert.ok(storeVolume, `${d.store} keeps its data in a named volume`);
      for (const name of [d.store, ...routed, d.lb]) {
        assert.deepEqual(services[name]!.profiles ?? [], d.profile ? [d.profile] : [], `${name}'s profiles`);
      }

      const prefixes = new Set<string>();
      for (const [name, s] of instances) {
        assert.ok(s, `service ${name}`);
        assert.equal(s.build?.context.replace(/\/$/, ''), ROOT.replace(/\/$/, ''), `${name} is built from this repo`);
        const env = s.environment ?? {};
        assert.equal(env.HOST, '0.0.0.0', `${name} listens on all interfaces`);
        // A public bind refuses to start without authentication (server/config.ts).
        assert.equal(env.AUTH_JWT_SECRET, COMPOSE_ENV.TANDEM_JWT_SECRET, `${name} takes its JWT secret from TANDEM_JWT_SECRET`);
        // What the server itself makes of the environment: the config, then the store's URL.
        const config = loadConfig(env);
        assert.match(config.dbUrl, d.dbUrl, `${name} uses the ${d.store} service`);
        assert.match(config.redisUrl ?? '', /^redis:\/\/redis:6379/, `${name} uses the Redis service`);
        assert.ok(env.REDIS_PREFIX, `${name} sets a Redis channel prefix`);
        prefixes.add(config.redisPrefix);
        assert.deepEqual(config.corsOrigins, [`http://localhost:${d.port}`], `${name} admits the demo page behind ${d.lb}`);
        d.checkConfig(name, config, services);
        assert.match(JSON.stringify(s.healthcheck?.test), /\/readyz/, `${name} health check hits /readyz`);
        assert.equal(s.depends_on?.[d.store]?.condition, 'service_healthy', `${name} waits for ${d.store}`);
        assert.equal(s.depends_on?.redis?.condition, 'service_healthy', `${name} waits for redis`);
        assert.deepEqual(Object.keys(s.depends_on ?? {}).sort(), [d.store, 'redis'].sort(), `${name} depends on its store and Redis only`);
        // Docker sends SIGKILL after stop_grace_period: it must outlast the drain.
        assert.ok(
          seconds(s.stop_grace_period) > config.shutdownTimeoutMs / 1000,
          `${name}: stop_grace_period ${s.stop_grace_period} ≤ drain ${config.shutdownTimeoutMs / 1000} s`,
        );
      }
      assert.equal(prefixes.size, 1, `the instances behind ${d.lb} share one Redis prefix`);
    });
  }

  it('the PostgreSQL deployment: a separate Redis prefix, and a DB_URL the PostgreSQL adapter opens', async () => {
    const { services } = resolvedConfig('postgres');
    const pg = loadConfig(services['tandem1-pg']!.environment);
    const mongo = loadConfig(services.tandem1!.environment);
    // Both deployments may run side by side on the one Redis: their channels must not meet.
    assert.notEqual(pg.redisPrefix, mongo.redisPrefix);
    assert.match(JSON.stringify(services.postgres!.healthcheck?.test), /pg_isready/);
    assert.ok(
      services.postgres!.volumes?.some((v) => /:\/var\/lib\/postgresql\/data\b/.test(v)),
      'postgres keeps /var/lib/postgresql/data in a volume',
    );
    // Every instance's pool together fits PostgreSQL's default max_connections (100).
    const instances = Object.values(services).filter((s) => s.environment?.DB_URL?.startsWith('postgres:'));
    assert.ok(instances.length * pg.pgPoolMax <= 100, `${instances.length} × PG_POOL_MAX ${pg.pgPoolMax} > 100`);
    // openStorage connects on first use only: this proves the URL and pool size are accepted.
    const storage = openStorage(pg.dbUrl, { pgPoolMax: pg.pgPoolMax });
    assert.equal(storage.kind, 'postgres');
    await storage.close();
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
    const ignored = readFileSync(`${ROOT}.dockerignore`, 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(entry), `.dockerignore lists ${entry}`);
    // The build script the image runs is the one this repo uses.
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts.build ?? '', /scripts\/build\.mjs/);
  });

  it('monitoring: Prometheus scrapes every instance with METRICS_TOKEN; Grafana provisions it and a dashboard of figures /metrics has', async () => {
    const { services, volumes } = resolvedConfig('postgres');
    const prometheus = services.prometheus!;
    const grafana = services.grafana!;
    assert.equal(prometheus.profiles, undefined, 'monitoring runs with `docker compose up`');
    assert.ok(volumes && 'prometheus-data' in volumes);
    // The token: the same for every instance and Prometheus, written where the scrape config reads it.
    const instances = Object.entries(services).filter(([, s]) => s.build !== undefined);
    for (const [name, service] of instances) assert.equal(service.environment?.METRICS_TOKEN, COMPOSE_ENV.TANDEM_METRICS_TOKEN, name);
    assert.equal(prometheus.environment?.METRICS_TOKEN, COMPOSE_ENV.TANDEM_METRICS_TOKEN);
    // `docker-compose config` prints `$$` (compose's escape) as written; the shell sees `$`.
    const script = (prometheus.entrypoint ?? []).join(' ').replaceAll('$$', '$');
    const config = yamlFile('deploy/prometheus.yml') as {
      scrape_configs: Array<{
        metrics_path: string;
        authorization: { type: string; credentials_file: string };
        static_configs: Array<{ targets: string[] }>;
      }>;
    };
    assert.equal(mountOf(prometheus, './deploy/prometheus.yml'), '/etc/prometheus/prometheus.yml');
    assert.match(script, /--config\.file=\/etc\/prometheus\/prometheus\.yml/);
    const [job] = config.scrape_configs;
    assert.ok(job);
    assert.equal(job.metrics_path, '/metrics');
    assert.equal(job.authorization.type, 'Bearer');
    assert.match(script, new RegExp(`"\\$METRICS_TOKEN" > ${job.authorization.credentials_file.replace(/[/.]/g, '\\$&')}`));
    // Every instance is a target at the port it listens on, and every target is an instance.
    const targets = job.static_configs.flatMap((c) => c.targets).sort();
    assert.deepEqual(targets, instances.map(([name, s]) => `${name}:${s.environment?.PORT}`).sort());
    // Grafana: the data source is this Prometheus, the dashboards folder is the one mounted.
    const datasources = yamlFile('deploy/grafana/provisioning/datasources/prometheus.yml') as {
      datasources: Array<{ uid: string; url: string }>;
    };
    const providers = yamlFile('deploy/grafana/provisioning/dashboards/tandem.yml') as { providers: Array<{ options: { path: string } }> };
    assert.equal(mountOf(grafana, './deploy/grafana/provisioning'), '/etc/grafana/provisioning');
    assert.equal(mountOf(grafana, './deploy/grafana/dashboards'), providers.providers[0]?.options.path);
    const source = datasources.datasources[0]!;
    assert.equal(source.url, 'http://prometheus:9090');
    const dashboard = JSON.parse(readFileSync(`${ROOT}deploy/grafana/dashboards/tandem.json`, 'utf8')) as {
      panels: Array<{ title: string; datasource: { uid: string }; targets: Array<{ expr: string }> }>;
    };
    // Every series a panel asks for is one a Tandem server exposes.
    const server = await startTestServer();
    try {
      const exposed = (await (await fetch(`${server.url}/metrics`)).text())
        .split('\n')
        .filter((line) => line.startsWith('# TYPE '))
        .map((line) => line.split(' ')[2]!);
      for (const panel of dashboard.panels) {
        assert.equal(panel.datasource.uid, source.uid, panel.title);
        for (const { expr } of panel.targets) {
          for (const [name] of expr.matchAll(/\b(?:tandem|nodejs|process)_[a-z0-9_]+/g)) {
            const family = name.replace(/_(bucket|sum|count)$/, '');
            assert.ok(exposed.includes(name) || exposed.includes(family), `${panel.title}: ${name} is exposed by /metrics`);
          }
        }
      }
    } finally {
      await server.close();
    }
  });
});
