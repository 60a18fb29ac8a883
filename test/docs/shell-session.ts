/**
 * A scratch shell for one README ```sh block: the block's lines run one after another
 * through bash in the repository (npm scripts need it), in an environment whose port, data
 * paths and secrets are the test's own, with variables a line exports carried to the next.
 * Long-running lines (`npm start`, anything ending in `&`) become processes that are stopped
 * afterwards. Nothing here listens off loopback or talks to anything but 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../helpers/system.js';
import { waitFor } from '../helpers/wait.js';
import { ROOT } from './readme-blocks.js';

/** Server settings the test must own: a developer's own values must not leak into a run. */
const OWNED_VARIABLE =
  /^(PORT|HOST|DB_URL|RULES_FILE|LOG_LEVEL|MILESTONE_INTERVAL|SHUTDOWN_TIMEOUT_MS|(AUTH|TANDEM|LOAD|MONGO|REDIS|SQLITE|PG|MAX|CORS|METRICS|REFUSALS?|OPS|CREATES|QUERIES|PRESENCE|WS)_\w*)$/;

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A server a line started (`npm start`), as its own process group. */
export interface StartedServer {
  /** The line as run (after substitution). */
  readonly command: string;
  /** npm (or bash), leader of its own process group. */
  readonly child: ChildProcess;
  /** From the server's `tandem listening` log line. */
  readonly url: string;
  readonly pid: number;
  readonly auth: string;
  /** Every JSON log line so far. */
  readonly logs: Array<Record<string, unknown>>;
  /** The last lines the process group printed (for failure messages). */
  output(): string;
  readonly exited: Promise<number | null>;
}

/** A shell line as written: the command, and the comment after an unquoted `#`. */
export interface ShellLine {
  /** 0-based line within the block (README.md line = block.line + 1 + this). */
  readonly offset: number;
  readonly text: string;
  readonly command: string;
  readonly comment: string;
}

/** Splits `line` at its first `#` that starts a word outside quotes and `$(…)`. */
export function splitComment(text: string, offset = 0): ShellLine {
  let quote: '"' | "'" | null = null;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '$' && text[i + 1] === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (c === '#' && depth === 0 && (i === 0 || /\s/.test(text[i - 1]!))) {
      return { offset, text, command: text.slice(0, i).trim(), comment: text.slice(i + 1).trim() };
    }
  }
  return { offset, text, command: text.trim(), comment: '' };
}

/** The block's lines, `\`-continuations joined, blank lines dropped. */
export function shellLines(code: string): ShellLine[] {
  const lines: ShellLine[] = [];
  const raw = code.split('\n');
  for (let i = 0; i < raw.length; i++) {
    const start = i;
    let text = raw[i]!;
    while (text.endsWith('\\') && i + 1 < raw.length) text = `${text.slice(0, -1)} ${raw[++i]!.trim()}`;
    if (text.trim() !== '') lines.push(splitComment(text, start));
  }
  return lines;
}

/** `A=1 B=2 cmd …` → the leading assignments and the rest. */
export function leadingAssignments(command: string): { assignments: Record<string, string>; rest: string } {
  const assignments: Record<string, string> = {};
  let rest = command;
  for (;;) {
    const m = /^([A-Za-z_]\w*)=(\S*)\s+/.exec(rest);
    if (!m) return { assignments, rest };
    assignments[m[1]!] = m[2]!;
    rest = rest.slice(m[0].length);
  }
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export class ShellSession {
  /** Scratch folder: the store, reports, the env handover file. Removed by close(). */
  readonly dir: string;
  readonly env: Record<string, string>;
  /** What was changed in the lines as written, one entry each (printed by the test). */
  readonly substitutions = new Set<string>();
  readonly notes: string[] = [];
  readonly servers: StartedServer[] = [];
  /** stdout of the last foreground command (e.g. the token `tandem token` printed). */
  lastStdout = '';
  /** Our own redis-server, standing in for the `redis://127.0.0.1:6379` a line names. */
  redisUrl: string | null = null;
  private readonly ports = new Map<number, number>();
  private readonly children = new Set<ChildProcess>();

  private constructor(dir: string, env: Record<string, string>) {
    this.dir = dir;
    this.env = env;
  }

  /**
   * A session for `code` (the whole block): every example port it mentions, and 8080 (the
   * default a bare `npm start` listens on), mapped to a free port up front, so a line can
   * refer to a server a later line starts (`CORS_ORIGINS=http://localhost:8080`).
   */
  static async open(code: string): Promise<ShellSession> {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-readme-sh-'));
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !OWNED_VARIABLE.test(e[0])),
    );
    const session = new ShellSession(dir, {
      ...inherited,
      // The README's default store (./data/tandem.db) redirected to the scratch folder.
      DB_URL: `sqlite:${join(dir, 'tandem.db')}`,
      // The server reports where it listens at info level; the test waits for that line.
      LOG_LEVEL: 'info',
      // npm never reaches the network from this test (no update check, audit or fund calls).
      npm_config_update_notifier: 'false',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_offline: 'true',
    });
    const mentioned = new Set([8080, ...[...code.matchAll(/(?<![\d.])(80\d\d)(?!\d)/g)].map((m) => Number(m[1]))]);
    for (const port of mentioned) session.ports.set(port, await freePort());
    // A bare `npm start` listens on PORT, default 8080.
    session.env.PORT = String(session.ports.get(8080));
    session.substitutions.add(
      `PORT (default 8080) → ${session.env.PORT}; DB_URL (default sqlite:./data/tandem.db) → ${session.env.DB_URL}`,
    );
    return session;
  }

  /** The README example port a free port stands in for (`8081` for the one mapped from it). */
  readmePort(port: number): number | undefined {
    return [...this.ports].find(([, mapped]) => mapped === port)?.[0];
  }

  /** The free port standing in for a README example port. */
  port(readmePort: number): number {
    const port = this.ports.get(readmePort);
    if (port === undefined) throw new Error(`no port mapped for README's :${readmePort}`);
    return port;
  }

  /**
   * `text` with the README's example addresses replaced by the test's: `localhost:8080` and
   * `127.0.0.1:8080` → `127.0.0.1:<free port>` (loopback by address: `localhost` may resolve
   * to ::1), a bare `:8080` → `:<free port>`, `PORT=8080` → `PORT=<free port>`, and
   * `HOST=<public address>` → `HOST=127.0.0.1` (nothing this test starts is reachable from the
   * network; the written value is still checked through the server's config parser), and a
   * local `redis://…` → our own redis-server (`redisUrl`, set before such a line runs).
   */
  substitute(text: string): string {
    let out = text.replace(/\b(localhost|127\.0\.0\.1):(\d{4,5})\b/g, (whole, _host: string, port: string) => {
      const mapped = this.ports.get(Number(port));
      if (mapped === undefined) return whole;
      this.substitutions.add(`${whole} → 127.0.0.1:${mapped}`);
      return `127.0.0.1:${mapped}`;
    });
    out = out.replace(/\bPORT=(\d{4,5})\b/g, (whole, port: string) => {
      const mapped = this.ports.get(Number(port));
      if (mapped === undefined) return whole;
      this.substitutions.add(`${whole} → PORT=${mapped}`);
      return `PORT=${mapped}`;
    });
    out = out.replace(/(?<![\w.]):(\d{4,5})\b/g, (whole, port: string) => {
      const mapped = this.ports.get(Number(port));
      if (mapped === undefined) return whole;
      this.substitutions.add(`${whole} → :${mapped}`);
      return `:${mapped}`;
    });
    out = out.replace(/\bredis:\/\/(localhost|127\.0\.0\.1)(:\d+)?\b/g, (whole) => {
      if (this.redisUrl === null) throw new Error(`no test Redis to stand in for ${whole}`);
      this.substitutions.add(`${whole} → ${this.redisUrl} (our own redis-server, never the machine's)`);
      return this.redisUrl;
    });
    out = out.replace(/\bHOST=(\S+)/g, (whole, host: string) => {
      if (isLoopbackHost(host)) return whole;
      this.substitutions.add(`HOST=${host} → HOST=127.0.0.1 (the test binds loopback only)`);
      return 'HOST=127.0.0.1';
    });
    return out;
  }

  /**
   * Runs `command` through bash to completion (deadline `timeoutMs`, then the process group
   * is killed and the run fails). Variables it exports are kept for the following lines.
   */
  async run(command: string, timeoutMs = 60_000): Promise<CommandResult> {
    const envFile = join(this.dir, 'env-after');
    const script = `${command}\n__readme_rc=$?\nenv -0 > '${envFile}'\nexit $__readme_rc\n`;
    const child = spawn('bash', ['-c', script], { cwd: ROOT, env: this.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const outcome = await Promise.race([exited, deadline]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.killGroup(child, 'SIGKILL');
      await exited;
      throw new Error(`\`${command}\` did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`);
    }
    this.children.delete(child);
    const [code] = outcome;
    if (code === 0) this.adoptEnv(envFile);
    this.lastStdout = stdout;
    return { code, stdout, stderr };
  }

  /** Carries over what the command exported (bash's own bookkeeping variables aside). */
  private adoptEnv(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return;
    }
    for (const entry of text.split('\0')) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const name = entry.slice(0, eq);
      if (['_', 'SHLVL', 'PWD', 'OLDPWD', '__readme_rc'].includes(name)) continue;
      this.env[name] = entry.slice(eq + 1);
    }
  }

  /**
   * Starts `command` (a server: `npm start`, possibly with assignments) as its own process
   * group, and resolves once the server logged where it listens.
   */
  async start(command: string, timeoutMs = 90_000): Promise<StartedServer> {
    const child = spawn('bash', ['-c', command], { cwd: ROOT, env: this.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    const tail: string[] = [];
    const logs: Array<Record<string, unknown>> = [];
    const keep = (line: string) => {
      tail.push(line);
      if (tail.length > 200) tail.shift();
    };
    createInterface({ input: child.stderr! }).on('line', keep);
    const exited = (once(child, 'exit') as Promise<[number | null]>).then(([code]) => code);
    const listening = new Promise<Record<string, unknown>>((resolve) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        keep(line);
        if (!line.startsWith('{')) return; // npm's own banner
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (logs.length < 1000) logs.push(entry);
          if (entry.msg === 'tandem listening') resolve(entry);
        } catch {
          // not a log line
        }
      });
    });
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      listening,
      exited.then((code) => `exited with ${code}`),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`did not log "tandem listening" in ${timeoutMs} ms`), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (typeof outcome === 'string') {
      this.killGroup(child, 'SIGKILL');
      throw new Error(`\`${command}\` ${outcome}:\n${tail.join('\n')}`);
    }
    const server: StartedServer = {
      command,
      child,
      url: String(outcome.url),
      pid: Number(outcome.pid),
      auth: String(outcome.auth),
      logs,
      output: () => tail.join('\n'),
      exited,
    };
    this.servers.push(server);
    return server;
  }

  /**
   * Ctrl-C in the terminal: SIGINT to the whole process group (npm, its shell, the server).
   * Resolves once every one of them is gone; the server must have shut down cleanly (it
   * exits 0 right after logging `tandem stopped`; npm re-raises the signal, so its own status
   * says nothing).
   */
  async interrupt(server: StartedServer): Promise<void> {
    this.killGroup(server.child, 'SIGINT');
    await server.exited;
    await waitFor(() => !alive(server.pid), { timeoutMs: 20_000, what: `server pid ${server.pid} to exit after Ctrl-C` });
    this.children.delete(server.child);
    this.servers.splice(this.servers.indexOf(server), 1);
    const messages = server.logs.map((l) => l.msg);
    if (!messages.includes('tandem stopped') || messages.includes('shutdown failed')) {
      throw new Error(`after Ctrl-C the server did not stop cleanly:\n${server.output()}`);
    }
  }

  /** SIGTERM to the server process (a supervisor's stop); resolves with npm's exit status. */
  async terminate(server: StartedServer): Promise<number | null> {
    try {
      process.kill(server.pid, 'SIGTERM');
    } catch {
      // already gone: its exit status tells
    }
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      server.exited,
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 30_000))),
    ]);
    clearTimeout(timer);
    if (code === 'timeout') {
      this.killGroup(server.child, 'SIGKILL');
      throw new Error(`\`${server.command}\` did not exit within 30 s of SIGTERM:\n${server.output()}`);
    }
    this.children.delete(server.child);
    this.servers.splice(this.servers.indexOf(server), 1);
    return code;
  }

  private killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal); // the group this session started (detached), nothing else
    } catch {
      // the group is gone already
    }
  }

  /** Kills whatever is still running (a failed test) and removes the scratch folder. */
  async close(): Promise<void> {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        this.killGroup(child, 'SIGKILL');
        await exited;
      } else {
        this.killGroup(child, 'SIGKILL'); // stragglers of an exited leader
      }
    }
    this.children.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
