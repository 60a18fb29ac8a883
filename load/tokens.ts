/**
 * Tokens for runs against a server with authentication (--jwt-secret): every simulated
 * client is its own user (sub `load-<n>`) and signs its own tokens, as real users each hold
 * one; the helper connections (convergence check, /metrics probe, W5) get their own subs.
 */
import { mintToken } from '../server/auth/mint-token.js';
import type { LoadAuth } from './options.js';

/**
 * Longer than any run the limits allow: a stock ShareDB client cannot hand a fresh token
 * to an open connection, so its token must outlive the run (the SDK would refresh).
 */
export const LOAD_TOKEN_TTL_SECONDS = 24 * 3600;

export type GetLoadToken = () => Promise<string>;

export function clientSub(index: number): string {
  return `load-${index}`;
}

/** A token provider for `sub` (a fresh token per call), or undefined when the run has no auth. */
export function tokenGetter(auth: LoadAuth | null, sub: string): GetLoadToken | undefined {
  if (!auth) return undefined;
  return () => mintToken({ secret: auth.secret, sub, claims: { ...auth.claims }, ttlSeconds: LOAD_TOKEN_TTL_SECONDS });
}
