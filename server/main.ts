import { Command, Option } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { TandemErrorCode } from '../client/protocol.js';
import { ConfigError, loadConfig, type ConfigSource } from './config.js';
import { startServer } from './app.js';
import { backupCommand } from './cli/backup-command.js';
import { docCommand } from './cli/doc-command.js';
import { tokenCommand } from './cli/token-command.js';
import { createLogger } from './ops/logger.js';

/** Flags mirror the environment variables; a flag wins over the variable. */
const FLAGS: ReadonlyArray<[flag: string, env: string, help: string]> = [
  ['--port <n>', 'PORT', 'TCP port (default 8080)'],
  ['--host <addr>', 'HOST', 'interface to bind (default 127.0.0.1)'],
  ['--db-url <url>', 'DB_URL', 'sqlite:<path> | memory: | mongodb://… | postgres://…[?schema=name] (default sqlite:./data/tandem.db)'],
  ['--redis-url <url>', 'REDIS_URL', 'Redis for multi-instance pub/sub (default: in-process)'],
  ['--redis-prefix <p>', 'REDIS_PREFIX', 'Redis channel prefix (default tandem)'],
  ['--sqlite-synchronous <mode>', 'SQLITE_SYNCHRONOUS', 'FULL | NORMAL (default NORMAL)'],
  ['--sqlite-group-commit <bool>', 'SQLITE_GROUP_COMMIT', 'one SQLite transaction per event-loop turn: true | false (default true)'],
  ['--max-op-bytes <n>', 'MAX_OP_BYTES', 'largest op accepted (default 262144)'],
  ['--max-op-depth <n>', 'MAX_OP_DEPTH', 'deepest op nesting accepted (default 64)'],
  ['--max-frame-bytes <n>', 'MAX_FRAME_BYTES', 'largest frame accepted (default 4 × max op bytes)'],
  ['--milestone-interval <n>', 'MILESTONE_INTERVAL', 'milestone snapshot every N versions (default 500)'],
  ['--shutdown-timeout-ms <n>', 'SHUTDOWN_TIMEOUT_MS', 'wait for in-flight commits on SIGTERM (default 10000)'],
  ['--log-level <level>', 'LOG_LEVEL', 'fatal | error | warn | info | debug | trace | silent (default info)'],
  ['--auth <mode>', 'AUTH', 'jwt | none (default: jwt when a key is set; none only on loopback)'],
  ['--auth-jwt-public-key <pem|file>', 'AUTH_JWT_PUBLIC_KEY', 'PEM public key (RS/PS, ES or EdDSA) tokens are verified with'],
  ['--auth-jwks-file <file>', 'AUTH_JWKS_FILE', 'JSON Web Key Set file tokens are verified with'],
  ['--auth-jwt-issuer <iss>', 'AUTH_JWT_ISSUER', 'required token issuer'],
  ['--auth-jwt-audience <aud>', 'AUTH_JWT_AUDIENCE', 'required token audience'],
  ['--auth-timeout-ms <n>', 'AUTH_TIMEOUT_MS', 'close connections that have not authenticated by then (default 10000)'],
  ['--rules-file <file>', 'RULES_FILE', 'JSON access rules (default: none)'],
  ['--cors-origins <list>', 'CORS_ORIGINS', 'comma-separated browser origins allowed (default: loopback origins on a loopback bind)'],
];
// AUTH_JWT_SECRET and METRICS_TOKEN are variables only: a flag would show in `ps`.

function attributeName(flag: string): string {
  return flag
    .split(' ')[0]!
    .replace(/^--/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The configuration from the variables and flags. A refused value is reported under the
 * name the user gave it: the flag when it came from one, else the variable.
 */
function configFrom(flags: Record<string, string | undefined>) {
  const source: ConfigSource = { ...process.env };
  const flagOf = new Map<string, string>();
  for (const [flag, env] of FLAGS) {
    const value = flags[attributeName(flag)];
    // commander fills flags from the variable too (Option.env); only a flag on the command line counts as one.
    if (value !== undefined && value !== process.env[env]) {
      source[env] = value;
      flagOf.set(env, flag.split(' ')[0]!);
    }
  }
  try {
    return loadConfig(source);
  } catch (err) {
    if (!(err instanceof ConfigError) || err.variable === undefined) throw err;
    const flag = flagOf.get(err.variable);
    if (flag === undefined) throw err;
    throw new ConfigError(err.message.replace(err.variable, flag), err.variable);
  }
}

async function serve(flags: Record<string, string | undefined>): Promise<void> {
  const config = configFrom(flags);
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, logger);
  server.onFatal(() => process.exit(1)); // a supervisor restarts it; clients resend
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

const program = new Command('tandem')
  .description('Tandem realtime JSON collaboration server')
  .version(pkg.version, '-V, --version')
  .showSuggestionAfterError(true);
const serveCommand = program.command('serve').description('run a server instance (npm start runs this)');
for (const [flag, env, help] of FLAGS) serveCommand.addOption(new Option(flag, help).env(env));
serveCommand.action(async (flags: Record<string, string | undefined>) => {
  try {
    await serve(flags);
  } catch (err) {
    const code = err instanceof ConfigError ? err.code : TandemErrorCode.START_FAILED;
    console.error(`tandem: ${code}: ${(err as Error).message}`);
    process.exit(1);
  }
});
program.addCommand(tokenCommand());
program.addCommand(backupCommand());
program.addCommand(docCommand());
// The bin runs the load tool's own bundle for `tandem load`; listed here so help shows it.
program
  .command('load')
  .description('drive simulated clients against servers and report (tandem load --help)')
  .allowUnknownOption()
  .action(() => {
    console.error('tandem: run the load tool through the package bin: node bin/tandem.js load …');
    process.exit(2);
  });
// `tandem` alone lists the commands instead of starting a server somewhere unexpected.
if (process.argv.length <= 2) program.help();
await program.parseAsync(process.argv);
