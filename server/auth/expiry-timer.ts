import type { Identity } from './identity.js';

/** setTimeout's longest delay; a later expiry is re-armed when this one fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Ends a connection whose token expired and was not replaced within `graceMs`. Until then its
 * requests are refused with TANDEM_TOKEN_EXPIRED and nothing is sent to it; after, it is
 * closed, so a client that never refreshes holds no subscription (the SDK refreshes ahead
 * of expiry, and reconnects with a fresh token if it could not).
 */
export class ExpiryTimer {
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly graceMs: number,
    private readonly onExpired: () => void,
  ) {}

  /** (Re)arms the timer for this identity's token; a token without `exp` never expires. */
  set(identity: Identity | null): void {
    this.clear();
    const expiresAt = identity?.expiresAt;
    if (expiresAt == null) return;
    const arm = () => {
      const left = expiresAt + this.graceMs - Date.now();
      if (left <= 0) return this.onExpired();
      this.timer = setTimeout(arm, Math.min(left, MAX_DELAY_MS));
    };
    arm();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** True when the connection's token has expired (anonymous connections never do). */
export function hasExpired(identity: Identity | null): boolean {
  return identity?.expiresAt != null && Date.now() >= identity.expiresAt;
}
