import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { TandemError, TandemErrorCode } from '../../client/protocol.js';
import { ConfigError, type AuthConfig } from '../config.js';
import { MAX_SUB_LENGTH, sourceTagOf, type Identity } from './identity.js';

/** Verifies a connection's token; rejects with TANDEM_UNAUTHENTICATED or TANDEM_TOKEN_EXPIRED. */
export interface TokenVerifier {
  verify(token: unknown): Promise<Identity>;
}

type JwtConfig = Extract<AuthConfig, { mode: 'jwt' }>;

const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** The algorithms a PEM public key can verify: a key never verifies a token of another kind. */
function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return [curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : 'ES256'];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      throw new ConfigError(`AUTH_JWT_PUBLIC_KEY: unsupported key type ${key.asymmetricKeyType}`);
  }
}

/** PEM text, or a path to a PEM file. */
function readPem(value: string): string {
  if (value.includes('-----BEGIN')) return value.replace(/\\n/g, '\n');
  if (!existsSync(value)) throw new ConfigError('AUTH_JWT_PUBLIC_KEY is neither PEM text nor an existing file');
  return readFileSync(value, 'utf8');
}

function keyAndAlgorithms(config: JwtConfig): { key: Uint8Array | KeyObject | JWTVerifyGetKey; algorithms: string[] } {
  if (config.secret !== null) return { key: new TextEncoder().encode(config.secret), algorithms: ['HS256'] };
  if (config.publicKey !== null) {
    let key: KeyObject;
    try {
      key = createPublicKey(readPem(config.publicKey));
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`AUTH_JWT_PUBLIC_KEY is not a usable public key: ${(err as Error).message}`);
    }
    return { key, algorithms: algorithmsFor(key) };
  }
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(readFileSync(config.jwksFile!, 'utf8')) as JSONWebKeySet;
    if (!Array.isArray(jwks.keys)) throw new Error('no "keys" array');
  } catch (err) {
    throw new ConfigError(`AUTH_JWKS_FILE ${config.jwksFile}: ${(err as Error).message}`);
  }
  return { key: createLocalJWKSet(jwks), algorithms: ASYMMETRIC_ALGORITHMS };
}

function unauthenticated(message: string): TandemError {
  return new TandemError(TandemErrorCode.UNAUTHENTICATED, message);
}

/** Builds the verifier for a `jwt` auth config; throws ConfigError for an unusable key. */
export function createTokenVerifier(config: JwtConfig): TokenVerifier {
  const { key, algorithms } = keyAndAlgorithms(config);
  const options = {
    algorithms,
    ...(config.issuer ? { issuer: config.issuer } : {}),
    ...(config.audience ? { audience: config.audience } : {}),
  };
  return {
    async verify(token: unknown): Promise<Identity> {
      if (typeof token !== 'string' || token === '') throw unauthenticated('a token is required');
      if (token.length > 16_384) throw unauthenticated('token too long');
      let payload;
      try {
        // jwtVerify has one overload per key kind; `key` is whichever this config built.
        ({ payload } = await jwtVerify(token, key as Uint8Array, options));
      } catch (err) {
        if (err instanceof errors.JWTExpired) throw new TandemError(TandemErrorCode.UNAUTHENTICATED, 'token expired');
        if (err instanceof errors.JWTClaimValidationFailed) throw unauthenticated(`token claim "${err.claim}" invalid: ${err.reason}`);
        if (err instanceof errors.JOSEError) throw unauthenticated(`token rejected (${err.code})`);
        throw unauthenticated('token rejected');
      }
      const sub = payload.sub;
      if (typeof sub !== 'string' || sub === '' || sub.length > MAX_SUB_LENGTH) {
        throw unauthenticated(`token needs a "sub" claim of 1 to ${MAX_SUB_LENGTH} characters`);
      }
      return {
        sub,
        claims: payload,
        expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null,
        sourceTag: sourceTagOf(sub),
      };
    },
  };
}
