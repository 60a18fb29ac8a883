/**
 * What one client connection may cost the transports (issue: no single client can crash,
 * freeze or exhaust the server): connections per IP address, the refusal log, and the
 * subscription cap, shared by the socket.io and /sharedb transports of one instance.
 */
import { TandemError, TandemErrorCode } from '../../client/protocol.js';
import type { TandemBackend } from '../backend.js';
import type { ResourceLimits } from '../config.js';
import type { Logger } from '../ops/logger.js';
import { RefusalLog } from './connection-refusals.js';
import { useSubscriptionLimits } from './subscriptions.js';

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client. */
export function normalizeIp(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export function tooManyConnections(max: number): TandemError {
  return new TandemError(
    TandemErrorCode.TOO_MANY_CONNECTIONS,
    `more than ${max} open connections from this address (MAX_CONNECTIONS_PER_IP)`,
  );
}

/**
 * Open connections per IP address, over both transports. With `max` 0 nothing is counted.
 * The address is the TCP peer's: behind a proxy every client shares the proxy's address.
 */
export class ConnectionsPerIp {
  private readonly open = new Map<string, number>();

  constructor(readonly max: number) {}

  count(ip: string): number {
    return this.open.get(ip) ?? 0;
  }

  /** True when one more connection from `ip` would be over the limit. */
  isFull(ip: string): boolean {
    return this.max > 0 && this.count(ip) >= this.max;
  }

  /** Counts a connection; returns the function that uncounts it (idempotent). */
  add(ip: string): () => void {
    if (this.max === 0) return () => undefined;
    this.open.set(ip, this.count(ip) + 1);
    let counted = true;
    return () => {
      if (!counted) return;
      counted = false;
      const left = this.count(ip) - 1;
      if (left > 0) this.open.set(ip, left);
      else this.open.delete(ip);
    };
  }
}

/** Connection bounds shared by the transports of one server instance. */
export interface InstanceConnectionLimits {
  readonly limits: ResourceLimits;
  readonly perIp: ConnectionsPerIp;
  readonly refusals: RefusalLog;
}

const byBackend = new WeakMap<TandemBackend, InstanceConnectionLimits>();

/**
 * The instance's connection limits, made on first use: both transports get the same
 * counters (connections per IP count across both; the refusal log budget is per instance),
 * and the subscription cap is registered on the backend once.
 */
export function connectionLimitsOf(backend: TandemBackend, limits: ResourceLimits, logger: Logger): InstanceConnectionLimits {
  let state = byBackend.get(backend);
  if (state === undefined) {
    state = {
      limits,
      perIp: new ConnectionsPerIp(limits.maxConnectionsPerIp),
      refusals: new RefusalLog(logger, limits.refusalLogsPerSecond),
    };
    useSubscriptionLimits(backend, limits.maxSubscriptions);
    byBackend.set(backend, state);
  }
  return state;
}
