import type { IncomingMessage, ServerResponse } from 'node:http';

/** A small page at `/` that says the server runs and how to connect. */
export function serveLandingPage(req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/') return false;
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Tandem</title></head><body>
<h1>Tandem is running</h1>
<p>Realtime JSON collaboration (ShareDB + json1).</p>
<ul>
<li>socket.io: <code>/socket.io/</code> — <code>connectSocket({url: location.origin})</code> from Tandem's client</li>
<li>ShareDB's plain protocol over WebSocket: <code>/sharedb</code></li>
<li>Health: <a href="/healthz">/healthz</a>, readiness: <a href="/readyz">/readyz</a>, metrics: <a href="/metrics">/metrics</a> (Prometheus), <a href="/metrics.json">/metrics.json</a></li>
</ul></body></html>`);
  return true;
}
