import type { IncomingMessage, ServerResponse } from 'node:http';
import { TandemError, TandemErrorCode } from '../../client/protocol.js';
import { answerWithin } from '../ops/answer-within.js';
import { applyCors, type OriginPolicy } from './origins.js';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
  /**
   * Default true: a failure makes /readyz answer 503. A non-critical failure (Redis: the
   * instance still serves its own clients and commits) answers 200 with status "degraded"
   * and the failure in `checks`, so a load balancer keeps routing to instances that can
   * serve instead of taking every instance out during a shared-dependency outage.
   */
  critical?: boolean;
}

export interface HttpRoutesOptions {
  checks: readonly ReadinessCheck[];
  /** The `/api/v1` handler (its own authentication: the caller's token); false when it does not own the path. */
  api?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Serves `/` and static demo assets; returns false when it does not own the path. */
  serveDemo?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Extra routes (e.g. /metrics) keyed by path; each passes `authorize` first. */
  extra?: Record<string, () => RouteBody | Promise<RouteBody>>;
  /** Decides whether a request may use the extra routes (null: yes; else the refusal). */
  authorize?: (req: IncomingMessage) => Promise<TandemError | null>;
  /** Browser origins allowed on every route. */
  origins: OriginPolicy;
  /** True once shutdown began: /readyz turns 503 so load balancers stop routing here. */
  isDraining(): boolean;
}

/** An extra route's answer. */
export interface RouteBody {
  contentType: string;
  body: string;
}

/** A JSON answer for an extra route. */
export function jsonBody(value: unknown): RouteBody {
  return { contentType: 'application/json', body: JSON.stringify(value) };
}

/** A JSON answer that no cache keeps (every route, /api/v1 included). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

type Readiness = { status: 'ready' | 'degraded' | 'not ready'; checks: Record<string, string> };

async function readiness(checks: readonly ReadinessCheck[]): Promise<Readiness> {
  const results: Record<string, string> = {};
  let ok = true;
  let degraded = false;
  await Promise.all(
    checks.map(async ({ name, check, critical = true }) => {
      try {
        await answerWithin(check, 2_000);
        results[name] = 'ok';
      } catch (err) {
        if (critical) ok = false;
        else degraded = true;
        results[name] = (err as Error).message || 'failed';
      }
    }),
  );
  return { status: !ok ? 'not ready' : degraded ? 'degraded' : 'ready', checks: results };
}

/** The plain HTTP side: /healthz, /readyz, the demo page, and a 404 for the rest. */
export function createHttpHandler(options: HttpRoutesOptions) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (!applyCors(options.origins, req, res)) return;
    if (path === '/healthz') return sendJson(res, 200, { status: 'alive' });
    if (path === '/readyz') {
      if (options.isDraining()) return sendJson(res, 503, { status: 'draining' });
      // `?strict` (monitoring, tests): a degraded instance answers 503 too.
      const strict = /[?&]strict(=|&|$)/.test(req.url ?? '');
      void readiness(options.checks).then((result) =>
        sendJson(res, result.status === 'ready' || (result.status === 'degraded' && !strict) ? 200 : 503, result),
      );
      return;
    }
    if (options.api?.(req, res)) return;
    const extra = options.extra?.[path];
    if (extra) {
      const authorize = options.authorize ?? (async () => null);
      void authorize(req).then((refusal) => {
        if (refusal) {
          res.setHeader('www-authenticate', 'Bearer');
          return sendJson(res, 401, { error: refusal.toJSON() });
        }
        return Promise.resolve(extra()).then(
          ({ contentType, body }) => {
            res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
            res.end(body);
          },
          (err: unknown) => sendJson(res, 500, { error: new TandemError(TandemErrorCode.UNKNOWN, (err as Error).message).toJSON() }),
        );
      });
      return;
    }
    if (options.serveDemo?.(req, res)) return;
    sendJson(res, 404, { error: new TandemError(TandemErrorCode.NOT_FOUND, `no route for ${path}`).toJSON() });
  };
}
