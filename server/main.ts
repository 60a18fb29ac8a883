import { Command, Option } from 'commander';
import { ConfigError, loadConfig, type ConfigSource } from './config.js';
import { startServer } from './app.js';
import { tokenCommand } from './cli/token-command.js';
import { createLogger } from './ops/logger.js';

/** Flags mirror the environment variables; a flag wins over the variable. */
const FLAGS: ReadonlyArray<[flag: string, env: string, help: string]> = [
  ['--port <n>', 'PORT', 'TCP port (default 8080)'],
  ['--host <addr>', 'HOST', 'interface to bind (default 127.0.0.1)'],
  ['--db-url <url>', 'DB_URL', 'sqlite:<path> | memory: | mongodb://… (default sqlite:./data/tandem.db)'],
  ['--redis-url <url>', 'REDIS_URL', 'Redis for multi-instance pub/sub (default: in-process)'],
  ['--redis-prefix <p>', 'REDIS_PREFIX', 'Redis channel prefix (default tandem)'],
  ['--sqlite-synchronous <mode>', 'SQLITE_SYNCHRONOUS', 'FULL | NORMAL (default NORMAL)'],
  ['--sqlite-group-commit <bool>', 'SQLITE_GROUP_COMMIT', 'one SQLite transaction per event-loop turn: true | false (default true)'],
  ['--max-op-bytes <n>', 'MAX_OP_BYTES', 'largest op accepted (default 262144)'],
  ['--max-op-depth <n>', 'MAX_OP_DEPTH', 'deepest op nesting accepted (default 64)'],
  ['--max-frame-bytes <n>', 'MAX_FRAME_BYTES', 'largest frame accepted (default 4 × max op bytes)'],
  ['--milestone-interval <n>', 'MILESTONE_INTERVAL', 'milestone snapshot every N versions (default 500)'],
  ['--shutdown-timeout-ms <n>', 'SHUTDOWN_TIMEOUT_MS', 'wait for in-flight commits on SIGTERM (default 10000)'],
  ['--log-level <level>', 'LOG_LEVEL', 'pino log level (default info)'],
];

function attributeName(flag: string): string {
  return flag
    .split(' ')[0]!
    .replace(/^--/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

async function serve(flags: Record<string, string | undefined>): Promise<void> {
  const source: ConfigSource = { ...process.env };
  for (const [flag, env] of FLAGS) {
    const value = flags[attributeName(flag)];
    if (value !== undefined) source[env] = value;
  }
  const config = loadConfig(source);
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

const program = new Command('tandem').description('Tandem realtime JSON collaboration server');
const serveCommand = program.command('serve', { isDefault: true }).description('run a server instance');
for (const [flag, env, help] of FLAGS) serveCommand.addOption(new Option(flag, help).env(env));
serveCommand.action(async (flags: Record<string, string | undefined>) => {
  try {
    await serve(flags);
  } catch (err) {
    const code = err instanceof ConfigError ? err.code : 'TANDEM_START_FAILED';
    console.error(`tandem: ${code}: ${(err as Error).message}`);
    process.exit(1);
  }
});
program.addCommand(tokenCommand());
await program.parseAsync(process.argv);
