/**
 * The `tandem-signature` header of a webhook delivery: `t=<ms since 1970>,v1=<hex>` where
 * v1 is HMAC-SHA256(WEBHOOK_SECRET, `${t}.${body}`). Signing the time with the body lets a
 * receiver refuse a captured delivery replayed later.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function signWebhook(secret: string, body: string, timeMs: number): string {
  const mac = createHmac('sha256', secret).update(`${timeMs}.${body}`).digest('hex');
  return `t=${timeMs},v1=${mac}`;
}

/**
 * For receivers: true when `header` signs `body` with `secret` and its time is within
 * `toleranceMs` of `nowMs`. Compare the raw body, before any JSON parsing.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined,
  body: string,
  toleranceMs = 300_000,
  nowMs = Date.now(),
): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match) return false;
  const time = Number(match[1]);
  if (!Number.isSafeInteger(time) || Math.abs(nowMs - time) > toleranceMs) return false;
  const expected = Buffer.from(signWebhook(secret, body, time).slice(-64), 'hex');
  return timingSafeEqual(expected, Buffer.from(match[2]!, 'hex'));
}
