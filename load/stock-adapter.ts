/**
 * A stock ShareDB client (sharedb/lib/client Connection) over a plain `ws` WebSocket, as a
 * ShareDB user writes it, plus the reconnect every real deployment adds (ShareDB's README
 * suggests reconnecting-websocket; `connection.bindToSocket(newSocket)` is its own way).
 * Used by the paired benchmark for the stock ShareDB peer. Tandem's conflict-resolving json1
 * type is registered so both sides run the same OT type.
 */
import WebSocket from 'ws';
import { Connection } from 'sharedb/lib/client/index.js';
import { registerTandemTypes } from '../ot-types/index.js';
import type { ConnectFn } from './adapter-types.js';
import { ShareDbLoadConnection } from './sharedb-handles.js';

const RECONNECT_MS = [100, 2_000] as const;

/** http(s)://host:port/path → ws(s)://host:port/path. */
export function toWebSocketUrl(url: string): string {
  return url.replace(/^http/, 'ws');
}

/** The socket URL, with a fresh token when the server wants one (Tandem's /sharedb reads `?token=`). */
async function socketUrl(wsUrl: string, getToken: (() => Promise<string>) | undefined): Promise<string> {
  if (!getToken) return wsUrl;
  const url = new URL(wsUrl);
  url.searchParams.set('token', await getToken());
  return url.toString();
}

export const connectStockWs: ConnectFn = async ({ url, getToken }) => {
  registerTandemTypes();
  const wsUrl = toWebSocketUrl(url);
  let held = false;
  let closed = false;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped per (re)connect: a reconnect that was still fetching its token when a newer
   * one started (or the client went offline) gives up. */
  let generation = 0;

  const open = (address: string): WebSocket => {
    const ws = new WebSocket(address);
    ws.on('error', () => {
      // ShareDB sees the error through onerror; this listener only keeps ws from throwing.
    });
    ws.on('open', () => {
      attempt = 0;
    });
    ws.on('close', () => {
      if (ws === socket) reconnectLater();
    });
    return ws;
  };
  const reconnectLater = () => {
    if (held || closed) return;
    const delay = Math.min(RECONNECT_MS[1], RECONNECT_MS[0] * 2 ** attempt++);
    timer = setTimeout(
      () => {
        timer = null;
        void reconnect();
      },
      delay * (0.5 + Math.random() / 2),
    );
  };
  // A fresh token per connection, as a reconnecting client with a URL provider does.
  const reconnect = async () => {
    const mine = ++generation;
    let address: string;
    try {
      address = await socketUrl(wsUrl, getToken);
    } catch {
      if (mine === generation) reconnectLater();
      return;
    }
    if (mine !== generation || held || closed) return;
    connection.bindToSocket(asShareDbSocket((socket = open(address))));
  };
  // ws's WebSocket is what ShareDB's README passes; its typings differ from the DOM's.
  const asShareDbSocket = (ws: WebSocket) => ws as unknown as ConstructorParameters<typeof Connection>[0];
  let socket = open(await socketUrl(wsUrl, getToken));
  // bindToSocket is ShareDB's documented reconnect call but missing from @types/sharedb.
  const connection = new Connection(asShareDbSocket(socket)) as Connection & {
    bindToSocket(socket: ConstructorParameters<typeof Connection>[0]): void;
  };

  return new ShareDbLoadConnection(connection, {
    goOffline: () => {
      if (held || closed) return;
      held = true;
      if (timer) clearTimeout(timer);
      socket.close();
    },
    goOnline: () => {
      if (!held || closed) return;
      held = false;
      // Only a closed socket may be replaced: ShareDB stays 'connected' until the old one's
      // close event (a graceful close waits for the server's close frame), and binding a new
      // socket before that fails with ERR_CONNECTION_STATE_TRANSITION_INVALID and leaves the
      // pending ops unsent. If it is still closing, its close listener reconnects.
      if (socket.readyState === WebSocket.CLOSED) void reconnect();
    },
    close: () => {
      closed = true;
      if (timer) clearTimeout(timer);
      connection.close();
    },
  });
};
