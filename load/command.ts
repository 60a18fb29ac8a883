/**
 * `tandem load`: the commander command (no side effects at import, so the server's CLI can
 * add it with `program.addCommand(loadCommand())`). load/cli.ts runs it standalone.
 */
import os from 'node:os';
import { Command, Option } from 'commander';
import { TandemErrorCode } from '../client/protocol.js';
import { runLoad } from './run-load.js';
import {
  DEFAULT_MIX,
  LIMITS,
  OptionError,
  defaultWorkers,
  parseClaims,
  parseDuration,
  parseMix,
  parseRange,
  parseRate,
  type LoadOptions,
  type TransportKind,
} from './options.js';
import { createProgress } from './progress.js';
import { writeReports } from './report-files.js';
import { formatSummary } from './summary.js';
import { LoadRunError } from './worker-pool.js';

/**
 * A failure on stderr as `tandem load: CODE: message`, the shape `tandem serve` and
 * `tandem token` use: the code (README's error table) is what scripts can match on.
 */
function printFailure(err: unknown): void {
  const code = err instanceof OptionError || err instanceof LoadRunError ? err.code : TandemErrorCode.LOAD_FAILED;
  console.error(`tandem load: ${code}: ${err instanceof Error ? err.message : String(err)}`);
}

interface RawFlags {
  url: string[];
  transport: TransportKind;
  clients: string;
  docs?: string;
  clientsPerDoc?: string;
  mix: string;
  rate: string;
  duration: string;
  warmup: string;
  ramp: string;
  chaos: string;
  chaosOffline: string;
  seed: string;
  workers?: string;
  collection: string;
  docPrefix?: string;
  drainTimeout: string;
  connectTimeout: string;
  allowRemote: boolean;
  out: string;
  json?: string;
  html?: string;
  progress: LoadOptions['progress'];
  label?: string;
  cpuProf?: string;
  jwtSecret?: string;
  jwtClaims?: string;
}

function int(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n)) throw new OptionError(`${name} must be an integer, got "${text}"`);
  return n;
}

/** Flags → LoadOptions (validated later by runLoad). Exported for tests. */
export function optionsFromFlags(flags: RawFlags): LoadOptions {
  const clients = int('--clients', flags.clients);
  let docs: number;
  if (flags.docs !== undefined) {
    docs = int('--docs', flags.docs);
    if (flags.clientsPerDoc !== undefined && docs * int('--clients-per-doc', flags.clientsPerDoc) !== clients) {
      throw new OptionError('--clients must equal --docs × --clients-per-doc when all three are given');
    }
  } else if (flags.clientsPerDoc !== undefined) {
    docs = Math.ceil(clients / int('--clients-per-doc', flags.clientsPerDoc));
  } else {
    docs = Math.max(1, Math.ceil(clients / 10));
  }
  const seed = int('--seed', flags.seed);
  const workers = flags.workers !== undefined ? int('--workers', flags.workers) : defaultWorkers(clients, os.availableParallelism());
  if (flags.jwtClaims !== undefined && !flags.jwtSecret) throw new OptionError('--jwt-claims needs --jwt-secret (or LOAD_JWT_SECRET)');
  return {
    urls: flags.url
      .flatMap((u) => u.split(','))
      .map((u) => u.trim())
      .filter(Boolean),
    transport: flags.transport,
    clients,
    docs,
    collection: flags.collection,
    docPrefix: flags.docPrefix ?? `load-${seed}-${Date.now().toString(36)}`,
    mix: parseMix(flags.mix),
    rate: parseRate(flags.rate),
    durationMs: parseDuration(flags.duration),
    warmupMs: parseDuration(flags.warmup),
    rampMs: parseDuration(flags.ramp),
    chaosPerMin: Number(flags.chaos),
    chaosOfflineMs: parseRange(flags.chaosOffline),
    seed,
    workers: Math.min(workers, docs),
    allowRemote: flags.allowRemote,
    drainTimeoutMs: parseDuration(flags.drainTimeout),
    connectTimeoutMs: parseDuration(flags.connectTimeout),
    progress: flags.progress,
    label: flags.label ?? '',
    auth: flags.jwtSecret ? { secret: flags.jwtSecret, claims: flags.jwtClaims === undefined ? {} : parseClaims(flags.jwtClaims) } : null,
  };
}

/** The command line as reports record it: the value of --jwt-secret blanked. */
export function reportedCommand(argv: readonly string[]): string {
  return argv.map((arg, i) => (argv[i - 1] === '--jwt-secret' ? '***' : arg.replace(/^(--jwt-secret=).*/s, '$1***'))).join(' ');
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function loadCommand(): Command {
  const mix = Object.entries(DEFAULT_MIX)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return (
    new Command('load')
      .description('drive simulated clients against Tandem server(s), check convergence, write JSON + HTML reports')
      // Usage mistakes (unknown flag, bad choice, missing value) exit 2 like every bad option;
      // help and version still exit 0.
      .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
      .addOption(
        new Option('-u, --url <url>', 'server URL; repeat (or comma-separate) for several instances, clients go round-robin')
          .argParser(collect)
          .default([], 'http://127.0.0.1:8080'),
      )
      .addOption(
        new Option('--transport <kind>', 'socketio (Tandem client) | sharedb-ws (stock ShareDB client, URL of a ShareDB WebSocket)')
          .choices(['socketio', 'sharedb-ws'])
          .default('socketio'),
      )
      .option('-c, --clients <n>', `simulated clients (max ${LIMITS.maxClients})`, '100')
      .option('-d, --docs <n>', 'documents (default: clients / 10)')
      .option('--clients-per-doc <n>', 'clients per document (instead of --docs)')
      .option('--mix <weights>', 'op mix: text typing, structural edits, presence', mix)
      .option('-r, --rate <ops>', 'actions per second per client, open loop; "max" = closed loop, one op in flight; 0 = idle', '1')
      .option('-t, --duration <time>', 'measured time (e.g. 20s, 2m)', '20s')
      .option('--warmup <time>', 'unmeasured time after ramp-up', '3s')
      .option('--ramp <time>', 'spread client connections over this time', '2s')
      .option('--chaos <per-min>', 'random disconnects per client per minute (0 = off)', '0')
      .option('--chaos-offline <ms>', 'offline time per chaos disconnect, min-max ms', '200-2000')
      .option('--seed <n>', 'PRNG seed for ops, schedules and chaos', '1')
      .option('-w, --workers <n>', 'load generator processes (default: one per 100 clients, at most one per CPU)')
      .option('--collection <name>', 'ShareDB collection', 'load')
      .option('--doc-prefix <prefix>', 'document id prefix (default: unique per run)')
      .option('--drain-timeout <time>', 'longest wait for pending ops after the run', '30s')
      .option('--connect-timeout <time>', 'longest wait for one client to connect', '20s')
      .option('--allow-remote', 'allow non-loopback server URLs', false)
      .option('-o, --out <dir>', 'directory for the JSON and HTML reports', 'load-results')
      .option('--json <file>', 'JSON report path (default <out>/load-<time>.json)')
      .option('--html <file>', 'HTML report path (default <out>/load-<time>.html)')
      .addOption(new Option('--progress <mode>', 'live progress').choices(['auto', 'bar', 'lines', 'none']).default('auto'))
      .option('--label <text>', 'label stored in the report')
      .option('--cpu-prof <dir>', 'write CPU profiles of the load generator processes into <dir>')
      .addOption(
        new Option('--jwt-secret <secret>', "server's AUTH_JWT_SECRET: each client signs its own HS256 token (sub load-<n>)").env(
          'LOAD_JWT_SECRET',
        ),
      )
      .option('--jwt-claims <json>', 'extra claims in every token, a JSON object (e.g. \'{"role":"editor"}\')')
      .action(async (flags: RawFlags) => {
        let options: LoadOptions;
        try {
          if (flags.url.length === 0) flags.url = ['http://127.0.0.1:8080'];
          options = optionsFromFlags(flags);
        } catch (err) {
          printFailure(err);
          process.exitCode = 2;
          return;
        }
        const progress = createProgress(options.progress);
        let result;
        try {
          result = await runLoad(options, {
            command: reportedCommand(process.argv.slice(1)),
            workerExecArgv: flags.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${flags.cpuProf}`] : [],
            hooks: { onPhase: (p) => progress.phase(p), onTick: (pt, e, t) => progress.tick(pt, e, t) },
          });
        } catch (err) {
          progress.stop();
          printFailure(err);
          process.exitCode = 2;
          return;
        }
        progress.stop();
        const files = await writeReports(result, { outDir: flags.out, json: flags.json, html: flags.html });
        console.log(formatSummary(result));
        console.log(`JSON report: ${files.json}\nHTML report: ${files.html}`);
        // 2: nothing could be measured (no client connected); 1: the run failed or diverged.
        process.exitCode = result.passed ? 0 : result.setup.connected === 0 ? 2 : 1;
      })
  );
}
