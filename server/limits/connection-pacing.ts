/**
 * How many of one client's frames the server takes per event-loop turn. One read from a
 * socket can hold a thousand small requests (64 KB of `{"a":"f",…}`), and ShareDB starts
 * them all before answering any: with an embedded store each fetch parses its snapshot at
 * once, so a thousand fetches of a 240 KB document held 240 MB in one turn (and a long-
 * polling POST of 2 MB could hold 40,000 requests). Taking a few frames per turn bounds
 * that work, lets other clients (and /healthz) in between, and keeps a client's frames in
 * order; the transport stops reading from the socket meanwhile, so TCP holds the rest.
 */

/** Frames taken from one connection per event-loop turn; the rest wait, in order. */
export const FRAMES_PER_TURN = 32;

/** What pacing needs from a transport: stop and restart reading from the socket. */
export interface PausableInput {
  /** Stops reading frames (TCP backpressure); frames already read may still arrive. */
  pause?(): void;
  resume?(): void;
}

function sizeOf(frame: unknown): number {
  if (typeof frame === 'string') return frame.length;
  if (frame instanceof Uint8Array) return frame.byteLength;
  return 64;
}

/**
 * Hands frames to `take` at most FRAMES_PER_TURN per turn, in arrival order. Frames over
 * that wait here while the input is paused; a transport that cannot pause (long-polling
 * takes a whole POST at once) is bounded by `maxHeldBytes` instead: past it, `onOverflow`
 * (the client is dropped).
 */
export class FramePacer {
  private takenThisTurn = 0;
  /** Frames waiting, oldest at `head` (an index, not shift(): a POST can queue 40,000). */
  private waiting: unknown[] = [];
  private head = 0;
  private waitingBytes = 0;
  private turnScheduled = false;
  private paused = false;
  private idleWaiters: Array<() => void> = [];
  private stopped = false;
  /** Set while the connection is held (see hold): no frame is taken until it fires. */
  private holdTimer: NodeJS.Timeout | null = null;
  private heldUntil = 0;

  constructor(
    private readonly take: (frame: unknown) => void,
    private readonly input: PausableInput,
    private readonly maxHeldBytes: number,
    private readonly onOverflow: () => void,
  ) {}

  /** A frame from the client: taken now, or queued behind the ones waiting. */
  offer(frame: unknown): void {
    if (this.stopped) return;
    this.scheduleTurn();
    if (this.holdTimer === null && this.waitingCount === 0 && this.takenThisTurn < FRAMES_PER_TURN) {
      this.takenThisTurn++;
      this.take(frame);
      return;
    }
    this.waiting.push(frame);
    this.waitingBytes += sizeOf(frame);
    this.pauseInput();
    if (this.waitingBytes > this.maxHeldBytes) {
      this.discard();
      this.onOverflow();
    }
  }

  /**
   * Takes no frame for `ms` (or until an earlier hold ends, if that is later): the client is
   * slowed down, its socket paused so TCP holds what it sends meanwhile. Frames already
   * handed to ShareDB go on; the order of the rest is kept.
   */
  hold(ms: number): void {
    if (this.stopped || ms <= 0) return;
    const until = performance.now() + ms;
    if (until <= this.heldUntil) return;
    this.heldUntil = until;
    this.pauseInput();
    if (this.holdTimer !== null) clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(this.endHold, ms);
  }

  /** Ends a hold now (the client is gone: slowing it down serves nobody). */
  release(): void {
    if (this.holdTimer === null) return;
    clearTimeout(this.holdTimer);
    this.heldUntil = 0;
    this.endHold();
  }

  /** Calls `done` once no frame waits (at once if none does). */
  whenIdle(done: () => void): void {
    if (this.waitingCount === 0) done();
    else this.idleWaiters.push(done);
  }

  /** Forgets the waiting frames and takes no more (the client was dropped). */
  discard(): void {
    this.stopped = true;
    if (this.holdTimer !== null) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    this.waiting = [];
    this.head = 0;
    this.waitingBytes = 0;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const done of waiters) done();
  }

  private readonly endHold = (): void => {
    this.holdTimer = null;
    if (this.waitingCount > 0) this.scheduleTurn();
    else this.resumeInput();
  };

  private pauseInput(): void {
    if (this.paused) return;
    this.paused = true;
    this.input.pause?.();
  }

  private resumeInput(): void {
    if (!this.paused) return;
    this.paused = false;
    this.input.resume?.();
  }

  private get waitingCount(): number {
    return this.waiting.length - this.head;
  }

  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    // The check phase right after the poll phase that read the frames: the next turn.
    setImmediate(this.nextTurn);
  }

  private readonly nextTurn = (): void => {
    this.turnScheduled = false;
    this.takenThisTurn = 0;
    if (this.stopped || this.holdTimer !== null || this.waitingCount === 0) return;
    this.scheduleTurn();
    while (this.holdTimer === null && this.waitingCount > 0 && this.takenThisTurn < FRAMES_PER_TURN) {
      const frame = this.waiting[this.head];
      this.waiting[this.head++] = undefined;
      this.waitingBytes -= sizeOf(frame);
      this.takenThisTurn++;
      this.take(frame);
      if (this.stopped) return;
    }
    if (this.waitingCount > 0) {
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      return;
    }
    this.waiting = [];
    this.head = 0;
    if (this.holdTimer === null) this.resumeInput();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const done of waiters) done();
  };
}
