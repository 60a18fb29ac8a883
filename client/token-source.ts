/**
 * The SDK's side of authentication: gets tokens from the application's `getToken()`,
 * knows when they expire (from the unverified payload; the server verifies), and derives
 * the source-id tag the server binds this user's ops to.
 */

/** The application's token provider; called at connect, before expiry and after a refusal. */
export type GetToken = () => string | Promise<string>;

/** Claims the SDK reads from a token it was given (never trusted: the server verifies). */
export interface TokenClaims {
  sub?: string;
  exp?: number;
}

function base64UrlToBytes(text: string): Uint8Array {
  const base64 = text
    .replace(/-/g, '+')
    .replace(/_/g, '/')
    .padEnd(Math.ceil(text.length / 4) * 4, '=');
  const binary = atob(base64);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function bytesToBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The payload of a compact JWT, or {} when it is not one. */
export function readClaims(token: string): TokenClaims {
  try {
    const part = token.split('.')[1];
    if (!part) return {};
    const value = JSON.parse(new TextDecoder().decode(base64UrlToBytes(part))) as unknown;
    return typeof value === 'object' && value !== null ? (value as TokenClaims) : {};
  } catch {
    return {};
  }
}

/** The prefix of every source id of user `sub` (the server's `sourceTagOf`). */
export function sourceTagOf(sub: string): string {
  return bytesToBase64Url(new TextEncoder().encode(sub));
}

/** A token counts as stale this long before its `exp`, so a request never races expiry. */
const EXPIRY_MARGIN_MS = 5_000;

export class TokenSource {
  private token: string | null = null;
  private claims: TokenClaims = {};
  private inFlight: Promise<string> | null = null;

  constructor(private readonly getToken: GetToken) {}

  /** The subject of the last token, if any. */
  get sub(): string | null {
    return typeof this.claims.sub === 'string' ? this.claims.sub : null;
  }

  /** When the current token expires (ms since the epoch), or null. */
  get expiresAt(): number | null {
    return typeof this.claims.exp === 'number' ? this.claims.exp * 1000 : null;
  }

  /** The current token unless it is (nearly) expired; else a new one. */
  current(): Promise<string> {
    const expiresAt = this.expiresAt;
    if (this.token !== null && (expiresAt === null || expiresAt - EXPIRY_MARGIN_MS > Date.now())) return Promise.resolve(this.token);
    return this.refresh();
  }

  /** Asks the application for a new token (one request at a time). */
  refresh(): Promise<string> {
    this.inFlight ??= (async () => {
      try {
        const token = await this.getToken();
        if (typeof token !== 'string' || token === '') throw new Error('getToken() must return a non-empty string');
        this.token = token;
        this.claims = readClaims(token);
        return token;
      } finally {
        this.inFlight = null;
      }
    })();
    return this.inFlight;
  }
}
