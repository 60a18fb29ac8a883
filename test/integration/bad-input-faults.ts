/**
 * Records what would kill or wedge a production server process while a bad-input test runs:
 * uncaught exceptions and unhandled promise rejections. The server runs in-process here,
 * so they land in the test process instead; under plain Node either one ends the process
 * (Node ≥ 15 treats an unhandled rejection as an uncaught exception).
 *
 * While recording, mocha's own 'uncaughtException' listener is detached: otherwise mocha
 * fails whichever test happens to be running and moves on while that test's frames are
 * still in flight; the test itself then reports the fault with the frame that caused it.
 * `stop()` (call it in afterEach) puts mocha's listeners back.
 */
export interface ProcessFault {
  kind: 'uncaughtException' | 'unhandledRejection';
  error: string;
  /** What the test was doing when the fault surfaced (e.g. the frame being sent). */
  during: string;
}

type Listener = (...args: unknown[]) => void;

export class ProcessFaultRecorder {
  readonly faults: ProcessFault[] = [];
  /** Set by the test before each step so a fault can be attributed. */
  during = 'setup';
  private savedUncaught: Listener[] = [];
  private active = false;
  private seen = new WeakSet<object>();

  private readonly onUncaught = (err: unknown) => this.record('uncaughtException', err);
  private readonly onUnhandled = (reason: unknown) => this.record('unhandledRejection', reason);

  /** Starts recording (clearing earlier faults). */
  start(): void {
    if (this.active) return;
    this.active = true;
    this.faults.length = 0;
    this.during = 'setup';
    this.savedUncaught = process.listeners('uncaughtException') as Listener[];
    for (const listener of this.savedUncaught) process.off('uncaughtException', listener);
    process.on('uncaughtException', this.onUncaught);
    process.on('unhandledRejection', this.onUnhandled);
  }

  stop(): void {
    if (!this.active) return;
    this.active = false;
    process.off('uncaughtException', this.onUncaught);
    process.off('unhandledRejection', this.onUnhandled);
    for (const listener of this.savedUncaught) process.on('uncaughtException', listener);
    this.savedUncaught = [];
  }

  /** Faults recorded since index `from`. */
  since(from: number): ProcessFault[] {
    return this.faults.slice(from);
  }

  describe(faults: ProcessFault[] = this.faults): string {
    return faults.map((f) => `${f.kind} during "${f.during}": ${f.error}`).join('\n');
  }

  private record(kind: ProcessFault['kind'], err: unknown): void {
    // mocha re-emits each unhandled rejection on `process`, so the same reason arrives twice.
    if (typeof err === 'object' && err !== null) {
      if (this.seen.has(err)) return;
      this.seen.add(err);
    }
    const error =
      err instanceof Error ? `${err.name}: ${err.message}\n${(err.stack ?? '').split('\n').slice(1, 8).join('\n')}` : String(err);
    this.faults.push({ kind, error, during: this.during });
  }
}
