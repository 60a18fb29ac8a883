/**
 * `tandem doc get|history|submit|restore|delete`: the HTTP API (`/api/v1`, server/http-api)
 * from the command line, against a running server. Prints the answer's JSON on stdout; a
 * refusal prints `tandem: <code>: <message>` on stderr and exits 1.
 */
import { Command, Option } from 'commander';
import { TandemErrorCode } from '../../client/protocol.js';
import { ConfigError } from '../config.js';

/** What one subcommand asks of the API. */
export interface DocRequest {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path under /api/v1/, already percent-encoded. */
  path: string;
  body?: unknown;
  idempotencyKey?: string;
}

export interface DocTarget {
  url: string;
  token?: string;
}

export interface DocAnswer {
  status: number;
  body: Record<string, unknown>;
}

function docPath(collection: string, id: string, suffix = ''): string {
  return `docs/${encodeURIComponent(collection)}/${encodeURIComponent(id)}${suffix}`;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigError(`${what} must be JSON, got ${JSON.stringify(text.slice(0, 80))}`);
  }
}

function wholeNumber(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new ConfigError(`${what} must be a whole number, got "${text}"`);
  return Number(text);
}

/** Sends one request; the answer whatever its status (network failures throw). */
export async function sendDocRequest(target: DocTarget, request: DocRequest): Promise<DocAnswer> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (target.token) headers.authorization = `Bearer ${target.token}`;
  if (request.idempotencyKey) headers['idempotency-key'] = request.idempotencyKey;
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  const base = target.url.replace(/\/+$/, '');
  let res: Response;
  try {
    res = await fetch(`${base}/api/v1/${request.path}`, {
      method: request.method,
      headers,
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
    });
  } catch (err) {
    throw Object.assign(new Error(`${base} did not answer: ${(err as Error).cause ?? (err as Error).message}`), {
      code: TandemErrorCode.CONNECT_FAILED,
    });
  }
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { error: { code: TandemErrorCode.UNKNOWN, message: `HTTP ${res.status}: ${text.slice(0, 200)}` } };
  }
  return { status: res.status, body };
}

interface CommonFlags {
  url: string;
  token?: string;
}

async function run(flags: CommonFlags, request: () => DocRequest): Promise<void> {
  try {
    const answer = await sendDocRequest({ url: flags.url, token: flags.token }, request());
    if (answer.status >= 400) {
      const error = (answer.body.error ?? {}) as { code?: string; message?: string };
      console.error(`tandem: ${error.code ?? TandemErrorCode.UNKNOWN}: ${error.message ?? `HTTP ${answer.status}`}`);
      process.exit(1);
    }
    console.log(JSON.stringify(answer.body));
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    console.error(`tandem: ${typeof code === 'string' ? code : TandemErrorCode.UNKNOWN}: ${(err as Error).message}`);
    process.exit(1);
  }
}

function withCommon(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'the server').env('SERVER_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--token <jwt>', 'bearer token (tandem token prints one)').env('AUTH_TOKEN'));
}

/** The `doc` command and its subcommands. */
export function docCommand(): Command {
  const doc = new Command('doc').description('read and change documents through a running server (HTTP API /api/v1)');
  withCommon(doc.command('get').description('print a document (now, at a version, or at a time)'))
    .argument('<collection>')
    .argument('<id>')
    .option('--v <version>', 'as it was at this version')
    .option('--at <time>', 'as it was at this time (ms since 1970 or ISO 8601)')
    .action((collection: string, id: string, flags: CommonFlags & { v?: string; at?: string }) =>
      run(flags, () => {
        const query = new URLSearchParams();
        const v = wholeNumber(flags.v, '--v');
        if (v !== undefined) query.set('v', String(v));
        if (flags.at !== undefined) query.set('at', flags.at);
        const q = query.toString();
        return { method: 'GET', path: docPath(collection, id, q ? `?${q}` : '') };
      }),
    );
  withCommon(doc.command('history').description('print a page of the op log (time, source, user of each op)'))
    .argument('<collection>')
    .argument('<id>')
    .option('--from <version>', 'first version', '0')
    .option('--limit <n>', 'ops per page (at most 1000)', '100')
    .action((collection: string, id: string, flags: CommonFlags & { from: string; limit: string }) =>
      run(flags, () => {
        const from = wholeNumber(flags.from, '--from')!;
        const limit = wholeNumber(flags.limit, '--limit')!;
        return { method: 'GET', path: docPath(collection, id, `/ops?from=${from}&limit=${limit}`) };
      }),
    );
  withCommon(doc.command('submit').description('submit a json1 op (or --create a document)'))
    .argument('<collection>')
    .argument('<id>')
    .argument('[op]', 'the op as JSON, e.g. \'["items",0,{"i":"milk"}]\'')
    .option('--create <data>', 'create the document with this JSON data instead')
    .option('--v <version>', 'the version the op was written against (default: the current one)')
    .option('--idempotency-key <key>', 'commit once, however often this command is retried')
    .action(
      (
        collection: string,
        id: string,
        op: string | undefined,
        flags: CommonFlags & { create?: string; v?: string; idempotencyKey?: string },
      ) =>
        run(flags, () => {
          if ((op === undefined) === (flags.create === undefined)) throw new ConfigError('give an op, or --create <data>');
          const body: Record<string, unknown> =
            flags.create !== undefined ? { create: { data: parseJson(flags.create, '--create') } } : { op: parseJson(op!, 'the op') };
          const v = wholeNumber(flags.v, '--v');
          if (v !== undefined) body.v = v;
          return { method: 'POST', path: docPath(collection, id, '/ops'), body, idempotencyKey: flags.idempotencyKey };
        }),
    );
  withCommon(doc.command('restore').description('put a document back as it was at a version (as a new op)'))
    .argument('<collection>')
    .argument('<id>')
    .argument('<version>')
    .option('--idempotency-key <key>', 'restore once, however often this command is retried')
    .action((collection: string, id: string, version: string, flags: CommonFlags & { idempotencyKey?: string }) =>
      run(flags, () => ({
        method: 'POST',
        path: docPath(collection, id, '/restore'),
        body: { v: wholeNumber(version, '<version>') },
        idempotencyKey: flags.idempotencyKey,
      })),
    );
  withCommon(doc.command('delete').description('delete a document (its history stays)'))
    .argument('<collection>')
    .argument('<id>')
    .action((collection: string, id: string, flags: CommonFlags) =>
      run(flags, () => ({ method: 'DELETE', path: docPath(collection, id) })),
    );
  return doc;
}
