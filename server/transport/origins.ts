import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { TandemErrorCode } from '../../client/protocol.js';
import { isLoopbackHost } from '../config.js';

/**
 * Which browser origins may talk to this server. Browsers send `Origin` on cross-site
 * requests and on every WebSocket upgrade; a request without one comes from a non-browser
 * client, which an origin check cannot (and need not) stop — authentication does.
 */
export interface OriginPolicy {
  allows(origin: string | undefined): boolean;
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHost(url.hostname);
  } catch {
    return false;
  }
}

/** CORS_ORIGINS if set; else loopback origins on a loopback bind, and none on any other. */
export function createOriginPolicy(listed: readonly string[] | null, host: string): OriginPolicy {
  if (listed === null) {
    const loopback = isLoopbackHost(host);
    return { allows: (origin) => origin === undefined || (loopback && isLoopbackOrigin(origin)) };
  }
  const any = listed.includes('*');
  const set = new Set(listed);
  return { allows: (origin) => origin === undefined || any || set.has(origin) };
}

export const ORIGIN_REFUSED_MESSAGE = 'this Origin is not allowed (CORS_ORIGINS)';

/** The JSON body of a refused-origin 403. */
export function originRefusal(): string {
  return JSON.stringify({ error: { code: TandemErrorCode.ORIGIN_FORBIDDEN, message: ORIGIN_REFUSED_MESSAGE } });
}

/**
 * For plain HTTP routes: answers a disallowed origin with 403 (returns false), else adds
 * the CORS headers an allowed cross-origin caller needs and answers preflights.
 */
export function applyCors(policy: OriginPolicy, req: IncomingMessage, res: ServerResponse): boolean {
  const origin = req.headers.origin;
  if (!policy.allows(origin)) {
    res.writeHead(403, { 'content-type': 'application/json', vary: 'Origin' });
    res.end(originRefusal());
    return false;
  }
  if (origin !== undefined) {
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('vary', 'Origin');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'authorization, content-type',
        'access-control-max-age': '600',
      });
      res.end();
      return false;
    }
  }
  return true;
}

/** Answers an upgrade with an HTTP error and a JSON body; nothing reached ShareDB. */
export function refuseUpgrade(socket: Duplex, status: number, reason: string, body: string): void {
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
