import type { IncomingMessage, ServerResponse } from 'node:http';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface HttpRoutesOptions {
  checks: readonly ReadinessCheck[];
  /** Serves `/` and static demo assets; returns false when it does not own the path. */
  serveDemo?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Extra JSON routes (e.g. /metrics) keyed by path. */
  extra?: Record<string, () => unknown>;
  /** True once shutdown began: /readyz turns 503 so load balancers stop routing here. */
  isDraining(): boolean;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readiness(checks: readonly ReadinessCheck[]): Promise<{ ok: boolean; checks: Record<string, string> }> {
  const results: Record<string, string> = {};
  let ok = true;
  await Promise.all(
    checks.map(async ({ name, check }) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2_000);
        });
        await Promise.race([check(), timeout]);
        results[name] = 'ok';
      } catch (err) {
        ok = false;
        results[name] = (err as Error).message || 'failed';
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ok, checks: results };
}

/** The plain HTTP side: /healthz, /readyz, the demo page, and a 404 for the rest. */
export function createHttpHandler(options: HttpRoutesOptions) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return sendJson(res, 200, { status: 'alive' });
    if (path === '/readyz') {
      if (options.isDraining()) return sendJson(res, 503, { status: 'draining' });
      void readiness(options.checks).then((result) =>
        sendJson(res, result.ok ? 200 : 503, { status: result.ok ? 'ready' : 'not ready', checks: result.checks }),
      );
      return;
    }
    const extra = options.extra?.[path];
    if (extra) return sendJson(res, 200, extra());
    if (options.serveDemo?.(req, res)) return;
    sendJson(res, 404, { error: { code: 'TANDEM_NOT_FOUND', message: `no route for ${path}` } });
  };
}
