import { Connection } from 'sharedb/lib/client/index.js';
import { registerTandemTypes } from '../ot-types/index.js';
import { SocketIoShim, type SocketShimOptions } from './socket-shim.js';

export interface ConnectOptions extends Omit<SocketShimOptions, 'urls'> {
  /** Server URL (http(s)://host:port), or several to fail over between. */
  url: string | readonly string[];
}

/** A ShareDB Connection over socket.io, with Tandem's types registered. */
export interface SocketConnection {
  readonly connection: Connection;
  readonly shim: SocketIoShim;
  /** Closes the connection for good. */
  close(): void;
}

/**
 * Opens a ShareDB Connection to a Tandem server over socket.io (WebSocket, or long-polling
 * with `transports: ['polling']`). It reconnects by itself; ShareDB re-handshakes,
 * resubscribes and resends pending ops after each reconnect.
 */
export function connectSocket(options: ConnectOptions): SocketConnection {
  registerTandemTypes();
  const urls = typeof options.url === 'string' ? [options.url] : [...options.url];
  const shim = new SocketIoShim({ ...options, urls });
  // @types/sharedb declares the on* handlers non-nullable; the shim starts them as null
  // until Connection.bindToSocket installs its own.
  const connection = new Connection(shim as unknown as ConstructorParameters<typeof Connection>[0]);
  return {
    connection,
    shim,
    close: () => connection.close(),
  };
}
