import { SignJWT, type JWTPayload } from 'jose';

export interface MintOptions {
  /** AUTH_JWT_SECRET of the server that will verify the token (HS256). */
  secret: string;
  sub: string;
  /** Extra claims (e.g. `{role: 'editor'}`). */
  claims?: JWTPayload;
  /** Lifetime in seconds; omitted: no `exp`. */
  ttlSeconds?: number;
  issuer?: string | null;
  audience?: string | null;
}

/** Signs an HS256 token as Tandem verifies it: for development, tests and the load tool. */
export async function mintToken(options: MintOptions): Promise<string> {
  const jwt = new SignJWT({ ...options.claims }).setProtectedHeader({ alg: 'HS256' }).setSubject(options.sub).setIssuedAt();
  if (options.ttlSeconds !== undefined) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + options.ttlSeconds);
  if (options.issuer) jwt.setIssuer(options.issuer);
  if (options.audience) jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret));
}
