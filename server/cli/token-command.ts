/**
 * `tandem token`: prints a development HS256 token that a server with the same
 * AUTH_JWT_SECRET (and AUTH_JWT_ISSUER / AUTH_JWT_AUDIENCE) accepts. Production tokens come
 * from the application's own identity provider; this is for trying things out, tests and
 * the load tool's users.
 */
import { Command, Option } from 'commander';
import type { JWTPayload } from 'jose';
import { TandemErrorCode } from '../../client/protocol.js';
import { MAX_SUB_LENGTH } from '../auth/identity.js';
import { mintToken } from '../auth/mint-token.js';
import { ConfigError, loadConfig } from '../config.js';

const TTL_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "30s", "15m", "1h", "7d" or a bare number of seconds → seconds (≥ 1). */
export function parseTtl(text: string): number {
  const m = /^\s*(\d+)\s*([smhd])?\s*$/.exec(text);
  const seconds = m ? Number(m[1]) * TTL_UNITS[m[2] ?? 's']! : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 1) {
    throw new ConfigError(`--ttl must be a positive whole number of seconds or 30s / 15m / 1h / 7d, got "${text}"`);
  }
  return seconds;
}

/** Claims the command sets from its own flags: a `--claim` for them would be overwritten. */
const OWN_CLAIMS: Readonly<Record<string, string>> = { sub: '--sub', exp: '--ttl', iat: '--ttl', iss: '--issuer', aud: '--audience' };

/** `k=v` pairs → claims; a value that parses as JSON (numbers, booleans, arrays…) is taken as such. */
export function parseClaims(pairs: readonly string[]): JWTPayload {
  const claims: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq).trim() : '';
    if (key === '') throw new ConfigError(`--claim must be key=value, got "${pair}"`);
    if (key in OWN_CLAIMS) throw new ConfigError(`--claim ${key}=…: set "${key}" with ${OWN_CLAIMS[key]}`);
    const raw = pair.slice(eq + 1);
    try {
      claims[key] = JSON.parse(raw);
    } catch {
      claims[key] = raw;
    }
  }
  return claims;
}

interface TokenFlags {
  sub?: string;
  claim: string[];
  ttl: string;
  secret?: string;
  issuer?: string;
  audience?: string;
}

/** Validates the flags as the server validates its configuration, then signs. */
export async function tokenFromFlags(flags: TokenFlags): Promise<string> {
  if (!flags.secret) throw new ConfigError('no secret: set AUTH_JWT_SECRET or pass --secret');
  if (!flags.sub?.trim()) throw new ConfigError('--sub is required (the user id the token names)');
  if (flags.sub.length > MAX_SUB_LENGTH)
    throw new ConfigError(`--sub must be at most ${MAX_SUB_LENGTH} characters (the server refuses longer)`);
  // The server's own parsing: a secret it would refuse (too short) is refused here too.
  const { auth } = loadConfig({ AUTH_JWT_SECRET: flags.secret, AUTH_JWT_ISSUER: flags.issuer, AUTH_JWT_AUDIENCE: flags.audience });
  if (auth.mode !== 'jwt' || auth.secret === null) throw new ConfigError('no secret: set AUTH_JWT_SECRET or pass --secret');
  return mintToken({
    secret: auth.secret,
    sub: flags.sub,
    claims: parseClaims(flags.claim),
    ttlSeconds: parseTtl(flags.ttl),
    issuer: auth.issuer,
    audience: auth.audience,
  });
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function tokenCommand(): Command {
  return new Command('token')
    .description('print a development HS256 token for a server with the same AUTH_JWT_SECRET')
    .option('--sub <id>', 'user id (the `sub` claim); required')
    .addOption(
      new Option('--claim <key=value>', 'extra claim, repeatable; the value is JSON when it parses (5, true, ["a"]), else a string')
        .argParser(collect)
        .default([], 'none'),
    )
    .option('--ttl <time>', 'lifetime: 30s, 15m, 1h, 7d or seconds', '1h')
    .addOption(new Option('--secret <secret>', 'HS256 secret, ≥ 32 bytes (prefer the variable: flags show in `ps`)').env('AUTH_JWT_SECRET'))
    .addOption(new Option('--issuer <iss>', 'the `iss` claim the server checks').env('AUTH_JWT_ISSUER'))
    .addOption(new Option('--audience <aud>', 'the `aud` claim the server checks').env('AUTH_JWT_AUDIENCE'))
    .action(async (flags: TokenFlags) => {
      try {
        console.log(await tokenFromFlags(flags));
      } catch (err) {
        const code = err instanceof ConfigError ? err.code : TandemErrorCode.TOKEN_FAILED;
        console.error(`tandem: ${code}: ${(err as Error).message}`);
        process.exitCode = 1;
      }
    });
}
