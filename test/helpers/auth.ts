import { mintToken, type MintOptions } from '../../server/auth/mint-token.js';

/** The HS256 secret test servers with authentication use (32+ bytes, as the server requires). */
export const TEST_JWT_SECRET = 'tandem-test-secret-0123456789abcdef';

/** Server env for authentication with TEST_JWT_SECRET. */
export const AUTH_ENV = { AUTH_JWT_SECRET: TEST_JWT_SECRET } as const;

/** A token for `sub`, signed with TEST_JWT_SECRET unless `secret` says otherwise. */
export function testToken(sub: string, options: Partial<MintOptions> = {}): Promise<string> {
  return mintToken({ secret: TEST_JWT_SECRET, sub, ttlSeconds: 3600, ...options });
}
