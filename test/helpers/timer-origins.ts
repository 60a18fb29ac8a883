/**
 * Remembers where each pending timer was created, so that a leak check can say which code
 * left timers behind, not only how many (process.getActiveResourcesInfo() gives kinds only).
 *
 * setTimeout and setInterval are wrapped on globalThis and on node:timers (ESM imports of
 * node:timers follow through syncBuiltinESMExports). Timers created through
 * node:timers/promises are not seen.
 */
import { syncBuiltinESMExports } from 'node:module';
import timers from 'node:timers';

interface Origin {
  seq: number;
  stack: string;
}

const origins = new Map<NodeJS.Timeout, Origin>();
let seq = 0;

/** Node sets `_destroyed` once a timeout has fired (not repeating) or been cleared; not in its types. */
function isPending(timer: NodeJS.Timeout): boolean {
  return !(timer as unknown as { _destroyed?: boolean })._destroyed;
}

function prune(): void {
  for (const timer of origins.keys()) if (!isPending(timer)) origins.delete(timer);
}

function callerStack(): string {
  const stack = new Error().stack ?? '';
  // Drop "Error", this function's frame and the wrapper's.
  return stack.split('\n').slice(3).join('\n');
}

type TimerFunction = typeof setTimeout | typeof setInterval;

function tracked<F extends TimerFunction>(original: F): F {
  const wrapper = function (this: unknown, ...args: Parameters<F>): NodeJS.Timeout {
    const timer = (original as (...a: Parameters<F>) => NodeJS.Timeout).apply(this, args);
    origins.set(timer, { seq: ++seq, stack: callerStack() });
    if (origins.size > 5_000) prune();
    return timer;
  };
  // util.promisify(setTimeout) and friends look for this.
  Object.assign(wrapper, original);
  return wrapper as unknown as F;
}

let installed = false;

/** Starts recording timer origins; idempotent. */
export function trackTimerOrigins(): void {
  if (installed) return;
  installed = true;
  globalThis.setTimeout = tracked(globalThis.setTimeout);
  globalThis.setInterval = tracked(globalThis.setInterval);
  timers.setTimeout = tracked(timers.setTimeout);
  timers.setInterval = tracked(timers.setInterval);
  syncBuiltinESMExports();
}

/** A mark: timers created after it are the ones pendingTimersSince() reports. */
export function timerMark(): number {
  return seq;
}

/**
 * Where the timers created after `mark` and still pending, with a ref (they keep the process
 * alive), were created: one entry per distinct stack, most frequent first.
 */
export function pendingTimersSince(mark: number, maxStacks = 5): string[] {
  const counts = new Map<string, number>();
  for (const [timer, origin] of origins) {
    if (origin.seq <= mark || !isPending(timer) || !timer.hasRef()) continue;
    counts.set(origin.stack, (counts.get(origin.stack) ?? 0) + 1);
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, maxStacks)
    .map(([stack, n]) => `${n} timer(s) created at\n${stack}`);
}
