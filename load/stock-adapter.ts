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

export const connectStockWs: ConnectFn = ({ url }) => {
  registerTandemTypes();
  const wsUrl = toWebSocketUrl(url);
  let held = false;
  let closed = false;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let socket: WebSocket;

  const open = (): WebSocket => {
    const ws = new WebSocket(wsUrl);
    ws.on('error', () => {
      // ShareDB sees the error through onerror; this listener only keeps ws from throwing.
    });
    ws.on('open', () => {
      attempt = 0;
    });
    ws.on('close', () => {
      if (ws !== socket || held || closed) return;
      const delay = Math.min(RECONNECT_MS[1], RECONNECT_MS[0] * 2 ** attempt++);
      timer = setTimeout(() => {
        timer = null;
        if (!held && !closed) connection.bindToSocket(asShareDbSocket((socket = open())));
      }, delay * (0.5 + Math.random() / 2));
    });
    return ws;
  };
  // ws's WebSocket is what ShareDB's README passes; its typings differ from the DOM's.
  const asShareDbSocket = (ws: WebSocket) => ws as unknown as ConstructorParameters<typeof Connection>[0];
  socket = open();
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
      connection.bindToSocket(asShareDbSocket((socket = open())));
    },
    close: () => {
      closed = true;
      if (timer) clearTimeout(timer);
      connection.close();
    },
  });
};
