import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
}

/**
 * A TCP proxy on 127.0.0.1 in front of a server, that can stop reading what the server
 * sends on the connections open at that moment: to the server, their client stopped
 * reading (its TCP window fills), while the client itself — an unmodified SDK — stays as
 * it is. Connections opened later flow normally. Upstream connections come from
 * `localAddress`, so the server's logs tell this client apart.
 */
export class PausingProxy {
  private readonly paused = new Set<Pair>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    /** Open connections, kept by the connection handler. */
    private readonly pairs: Set<Pair>,
  ) {}

  static async start(target: string, localAddress: string): Promise<PausingProxy> {
    const { hostname, port } = new URL(target);
    const pairs = new Set<Pair>();
    const server = createServer((client) => {
      const upstream = connect({ host: hostname, port: Number(port), localAddress });
      const pair = { client, upstream };
      pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const end = () => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new PausingProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, pairs);
  }

  /** Stops reading from the server on every connection open now. */
  pause(): void {
    for (const pair of this.pairs) {
      pair.upstream.unpipe(pair.client);
      pair.upstream.pause();
      this.paused.add(pair);
    }
  }

  resume(): void {
    for (const pair of this.paused) {
      pair.upstream.pipe(pair.client);
      pair.upstream.resume();
    }
    this.paused.clear();
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
