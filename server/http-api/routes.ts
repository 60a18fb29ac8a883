/**
 * `/api/v1`: documents and their history over plain HTTP, for application backends and
 * operators (README: "HTTP API"). Every request runs as a client connection of its own
 * (WireSession) under the caller's token, so the access rules, limits and refusal codes are
 * the socket transports' own.
 *
 *   GET    /api/v1/docs/:collection                   ids and versions, paged (?limit, ?after)
 *   GET    /api/v1/docs/:collection/:id               snapshot; ?v=N at a version, ?at=<ms|ISO> at a time
 *   GET    /api/v1/docs/:collection/:id/ops           ops with metadata, paged (?from, ?limit)
 *   POST   /api/v1/docs/:collection/:id/ops           {op} | {create: {data}} [, v]; Idempotency-Key
 *   POST   /api/v1/docs/:collection/:id/restore       {v}: the document as it was at v, as a new op
 *   DELETE /api/v1/docs/:collection/:id
 *   GET    /api/v1/docs/:collection/:id/presence      who shows presence now (?wait=ms, ≤ MAX_PRESENCE_WAIT_MS)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TandemError, TandemErrorCode } from '../../client/protocol.js';
import { JSON1_TYPE_URI } from '../../ot-types/index.js';
import type { Identity } from '../auth/identity.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { TandemBackend } from '../backend.js';
import type { RefusalLog } from '../limits/connection-refusals.js';
import { normalizeIp } from '../limits/connections.js';
import { sendJson } from '../transport/http-routes.js';
import { type Answer, badRequest, DocRequests, type Json, wireErrorOf } from './doc-requests.js';
import { httpStatusOf } from './statuses.js';
import { WireSession } from './wire-session.js';

export const API_PREFIX = '/api/v1/';

export interface ApiOptions {
  backend: TandemBackend;
  /** null: AUTH=none, every caller is anonymous. */
  verifier: TokenVerifier | null;
  maxFrameBytes: number;
  maxFrameDepth: number;
  refusals: RefusalLog;
}

function sendError(res: ServerResponse, err: unknown): void {
  const error = wireErrorOf(err);
  const headers: Record<string, string> = {};
  if (typeof error.retryAfterMs === 'number') headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
  if (error.code === TandemErrorCode.UNAUTHENTICATED || error.code === TandemErrorCode.TOKEN_EXPIRED)
    headers['www-authenticate'] = 'Bearer';
  sendJson(res, httpStatusOf(error.code), { error }, headers);
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<Json> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // The rest is read and dropped, so the client gets the answer instead of a reset.
      if (size > maxBytes) return;
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > maxBytes) {
        return reject(new TandemError(TandemErrorCode.FRAME_TOO_LARGE, `request body exceeds ${maxBytes} bytes (MAX_FRAME_BYTES)`));
      }
      if (size === 0) return resolve({});
      try {
        const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
        resolve(value as Json);
      } catch {
        reject(badRequest('the request body must be a JSON object'));
      }
    });
  });
}

function segmentsOf(path: string): string[] {
  try {
    return path
      .slice(API_PREFIX.length)
      .split('/')
      .filter((s, i, all) => s !== '' || i < all.length - 1)
      .map((s) => decodeURIComponent(s));
  } catch {
    throw badRequest('the path is not valid percent-encoding');
  }
}

async function identityOf(req: IncomingMessage, verifier: TokenVerifier | null): Promise<Identity | null> {
  if (verifier === null) return null;
  const token = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (token === undefined) throw new TandemError(TandemErrorCode.UNAUTHENTICATED, 'send Authorization: Bearer <token>');
  return verifier.verify(token);
}

/** Handles `/api/v1/…` requests; returns false for any other path. */
export function createApiHandler(options: ApiOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://api');
    if (!url.pathname.startsWith(API_PREFIX)) return false;
    void handle(req, res, url, options).catch((err: unknown) => sendError(res, err));
    return true;
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, url: URL, options: ApiOptions): Promise<void> {
  const identity = await identityOf(req, options.verifier);
  const [resource, collection, id, action, ...rest] = segmentsOf(url.pathname);
  if (resource !== 'docs' || !collection || rest.length > 0) {
    throw new TandemError(TandemErrorCode.NOT_FOUND, `no route for ${url.pathname}`);
  }
  const method = req.method ?? 'GET';
  const body = method === 'POST' ? await readBody(req, options.maxFrameBytes) : {};
  const key = (req.headers['idempotency-key'] as string | undefined) ?? null;
  if (key !== null && (key.length === 0 || key.length > 255)) throw badRequest('Idempotency-Key must be 1 to 255 characters');

  const session = new WireSession({
    backend: options.backend,
    identity,
    who: { user: identity?.sub, ip: normalizeIp(req.socket.remoteAddress) },
    maxFrameBytes: options.maxFrameBytes,
    maxFrameDepth: options.maxFrameDepth,
    refusals: options.refusals,
  });
  try {
    await session.open();
    const api = new DocRequests(session, options.backend, identity);
    const answer = await route(api, method, collection, id, action, url.searchParams, body, key);
    sendJson(res, answer.status, answer.body);
  } finally {
    session.close();
  }
}

function route(
  api: DocRequests,
  method: string,
  collection: string,
  id: string | undefined,
  action: string | undefined,
  query: URLSearchParams,
  body: Json,
  key: string | null,
): Promise<Answer> {
  const wrong = () => {
    throw new TandemError(TandemErrorCode.NOT_FOUND, `no ${method} route for this path`);
  };
  if (id === undefined) return method === 'GET' ? api.list(collection, query) : wrong();
  if (action === undefined) {
    if (method === 'GET') return api.getDoc(collection, id, query);
    if (method === 'DELETE') return api.submit(collection, id, { del: true }, key);
    return wrong();
  }
  if (action === 'ops' && method === 'GET') return api.getOps(collection, id, query);
  if (action === 'presence' && method === 'GET') return api.presence(collection, id, query);
  if (action === 'ops' && method === 'POST') {
    const { op, create, v } = body;
    if ((op === undefined) === (create === undefined)) throw badRequest('give {"op": <json1 op>} or {"create": {"data": …}}');
    if (v !== undefined && (!Number.isSafeInteger(v) || (v as number) < 0)) throw badRequest('v must be a whole number');
    const message: Json =
      create !== undefined ? { create: { type: JSON1_TYPE_URI, data: (create as { data?: unknown } | null)?.data ?? null } } : { op };
    return api.submit(collection, id, message, key, v as number | undefined);
  }
  if (action === 'restore' && method === 'POST') return api.restore(collection, id, body, key);
  return wrong();
}
