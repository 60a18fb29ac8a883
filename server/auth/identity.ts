import type { JWTPayload } from 'jose';

/** Who a connection is, as its verified token says. */
export interface Identity {
  /** The token's `sub`: the user. */
  readonly sub: string;
  /** Every verified claim, for access rules and hooks. */
  readonly claims: Readonly<JWTPayload>;
  /** When the token stops being valid (ms since the epoch), or null if it has no `exp`. */
  readonly expiresAt: number | null;
  /**
   * Prefix every op source id (`src`) of this user carries: `<tag>.`. Derived from `sub`
   * alone, so the binding holds on every instance and across restarts without shared state.
   */
  readonly sourceTag: string;
}

/** Longest `sub` accepted: it is part of every source id of the user. */
export const MAX_SUB_LENGTH = 256;

/** The source-id prefix of a user: base64url of the UTF-8 `sub` (no `.` can occur in it). */
export function sourceTagOf(sub: string): string {
  return Buffer.from(sub, 'utf8').toString('base64url');
}

/** True when `src` is in the source-id namespace of `identity`. */
export function ownsSource(identity: Identity, src: string): boolean {
  return src.length > identity.sourceTag.length + 1 && src.startsWith(`${identity.sourceTag}.`);
}
