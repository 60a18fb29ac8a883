/**
 * A TCP proxy in front of PostgreSQL that a test can cut and restore, so PostgreSQL can be
 * "down" or "hanging" for one Tandem process while the machine's real server (shared by
 * everything else) is never touched.
 *
 * - `cut('refuse')`: every open connection is reset, and new ones are reset on arrival —
 *   what a client sees of a stopped or restarted server.
 * - `cut('hang')`: nothing is forwarded any more, either way, on open connections; new
 *   ones are accepted and held without an upstream — a server that stopped answering, or a
 *   network partition.
 * - `cut('lose-answers')`: statements still reach PostgreSQL, which runs (and commits)
 *   them, but its answers are held: work done whose acknowledgement never arrives.
 * - `restore()`: forwarding resumes; what was held is delivered (the partition healed),
 *   so statements sent meanwhile run then. `restore({ strand: true })` resumes for new
 *   connections only: the held ones stay dead without a reset.
 *
 * `upstreamPorts()` are the local ports of the proxy's connections to PostgreSQL, which
 * PostgreSQL reports as `client_port`: a test can pick its own backends out of
 * pg_stat_activity without touching anyone else's.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export type CutMode = 'refuse' | 'hang' | 'lose-answers';

interface Pair {
  client: Socket;
  upstream: Socket | null;
}

export class PostgresProxy {
  private mode: 'open' | CutMode = 'open';
  private readonly pairs = new Set<Pair>();
  private readonly server: Server;
  private readonly target: { host: string; port: number };
  /** Connections accepted so far (for tests that want to see the pool reconnect). */
  accepted = 0;

  private constructor(target: string) {
    const url = new URL(target);
    this.target = { host: url.hostname, port: Number(url.port || 5432) };
    this.server = createServer((client) => this.accept(client));
  }

  /** Starts a proxy on 127.0.0.1 (port 0) for the server of `targetUrl` (a postgres:// URL). */
  static async start(targetUrl: string): Promise<PostgresProxy> {
    const proxy = new PostgresProxy(targetUrl);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `targetUrl` with its host and port replaced by the proxy's. */
  url(targetUrl: string): string {
    const url = new URL(targetUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.href;
  }

  get state(): 'open' | CutMode {
    return this.mode;
  }

  /** Local ports of the open connections to PostgreSQL (its `client_port` for them). */
  upstreamPorts(): number[] {
    const ports: number[] = [];
    for (const pair of this.pairs) if (pair.upstream?.localPort !== undefined) ports.push(pair.upstream.localPort);
    return ports;
  }

  cut(mode: CutMode): void {
    this.mode = mode;
    for (const pair of [...this.pairs]) {
      if (mode === 'refuse') this.drop(pair, true);
      else this.hold(pair);
    }
  }

  /**
   * Forwards again. `strand: true` leaves the connections held by a hang as they are, for
   * good — a failover or a lost NAT entry: the old connections are dead without a reset,
   * only new ones reach PostgreSQL.
   */
  restore({ strand = false }: { strand?: boolean } = {}): void {
    this.mode = 'open';
    if (strand) return;
    for (const pair of [...this.pairs]) {
      if (pair.upstream) this.forward(pair);
      else this.connectUpstream(pair);
    }
  }

  async close(): Promise<void> {
    for (const pair of [...this.pairs]) this.drop(pair, false);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.accepted++;
    if (this.mode === 'refuse') {
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = { client, upstream: null };
    this.pairs.add(pair);
    client.on('error', () => this.drop(pair, false));
    client.on('close', () => this.drop(pair, false));
    if (this.mode === 'hang') client.pause();
    else this.connectUpstream(pair);
    if (this.mode === 'lose-answers') this.hold(pair);
  }

  private connectUpstream(pair: Pair): void {
    const upstream = connect(this.target);
    pair.upstream = upstream;
    upstream.on('error', () => this.drop(pair, false));
    upstream.on('close', () => this.drop(pair, false));
    this.forward(pair);
  }

  private forward({ client, upstream }: Pair): void {
    client.unpipe(); // idempotent: a connection that lost only answers still pipes requests
    upstream!.unpipe();
    client.pipe(upstream!);
    upstream!.pipe(client);
    client.resume();
    upstream!.resume();
  }

  /** Stops moving PostgreSQL's answers, and in a hang the requests too; both ends keep their connection. */
  private hold({ client, upstream }: Pair): void {
    upstream?.unpipe();
    upstream?.pause();
    if (this.mode === 'lose-answers') return;
    client.unpipe();
    client.pause();
  }

  private drop(pair: Pair, reset: boolean): void {
    if (!this.pairs.delete(pair)) return;
    for (const socket of [pair.client, pair.upstream]) {
      if (!socket || socket.destroyed) continue;
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}
