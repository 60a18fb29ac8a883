/**
 * A test that needs a missing service fails in CI (CI=true) and skips loudly elsewhere.
 * Call from a mocha `before`/`it` with `this` as the context.
 */
export function requireService(ctx: Mocha.Context, available: boolean, reason: string): void {
  if (available) return;
  if (process.env.CI === 'true') {
    throw new Error(`required service missing in CI: ${reason}`);
  }
  console.warn(`      SKIPPED (service missing): ${reason}`);
  ctx.skip();
}
