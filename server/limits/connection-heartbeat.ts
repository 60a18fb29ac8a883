import type { WebSocket, WebSocketServer } from 'ws';

interface Liveness {
  /** Answered (pong or any frame) since the last ping. */
  alive: boolean;
  /** Sent at least one message (a ShareDB client starts with its handshake). */
  spoke: boolean;
  openedAt: number;
}

export interface HeartbeatOptions {
  /** Ping every this many ms; a socket that did not answer the previous ping is terminated. */
  intervalMs: number;
  /** A socket that has sent no message this long after opening is closed, ms. */
  firstMessageTimeoutMs: number;
}

/**
 * Keeps the /sharedb WebSockets of `wss` honest: each is pinged every interval, and one
 * that answered neither that ping nor with any frame by the next is terminated (a peer
 * that vanished without a FIN, or never answers, is silent for at most two intervals). A
 * socket that never says anything — a stock ShareDB client sends its handshake at once —
 * is closed once `firstMessageTimeoutMs` has passed, checked at the same ticks: otherwise
 * a client whose WebSocket library answers pings could hold the connection forever.
 * One timer for the whole server, stopped when `wss` closes.
 */
export function startHeartbeat(wss: WebSocketServer, options: HeartbeatOptions): void {
  const liveness = new WeakMap<WebSocket, Liveness>();
  wss.on('connection', (ws: WebSocket) => {
    const state: Liveness = { alive: true, spoke: false, openedAt: Date.now() };
    liveness.set(ws, state);
    ws.on('pong', () => {
      state.alive = true;
    });
    ws.on('message', () => {
      state.alive = true;
      state.spoke = true;
    });
  });
  const timer = setInterval(() => {
    const now = Date.now();
    for (const ws of wss.clients) {
      const state = liveness.get(ws);
      if (state === undefined) continue;
      if (!state.alive) {
        ws.terminate();
        continue;
      }
      if (ws.readyState !== ws.OPEN) {
        // Closing: one more interval to finish the close handshake, then terminated.
        state.alive = false;
        continue;
      }
      if (!state.spoke && now - state.openedAt >= options.firstMessageTimeoutMs) {
        ws.close(1008, 'no message within AUTH_TIMEOUT_MS');
        continue;
      }
      state.alive = false;
      ws.ping();
    }
  }, options.intervalMs);
  // A server that failed to listen is never closed: its timer must not hold the process.
  timer.unref();
  wss.once('close', () => clearInterval(timer));
}
