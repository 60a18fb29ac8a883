/**
 * The end of an event-loop turn, where one server instance lets its work out: first the
 * store makes the turn's writes durable (one SQLite COMMIT for every commit of the turn),
 * then what was held for the clients and the other instances is sent.
 *
 * Why hold anything: one socket write per message was the server's largest cost per commit
 * (an ack plus one op per other subscriber, each a `writev`); a socket often gets several
 * messages in one turn, and holding them to the end of the turn sends them as one. And a
 * transaction per commit (`BEGIN IMMEDIATE` … `COMMIT`) was the next largest; one per turn
 * is safe only if nothing that depends on the turn's writes — an ack, a broadcast op, a
 * snapshot read — leaves the process before the COMMIT. Both are the same rule: everything
 * that leaves goes through `send`, and `send` flushes run after the `durable` ones.
 *
 * The wait is the rest of the current turn (setImmediate: the check phase right after the
 * poll phase that read the clients' frames), never a timer.
 *
 * Delivering a committed op to this instance's subscribers (their op handling, middleware
 * and framing) goes through `deliver`. When it is the turn's only delivery (an idle
 * server: one op, one ack) it waits until the turn's sends have left, so the submitter's
 * ack does not wait for the broadcast of its op, as stock ShareDB sends it first. A second
 * delivery in the same turn (a busy server) releases the held one and both run in the turn,
 * in order: split across two turns, a socket that gets an ack and ops would take two
 * writes (measured: W1 lost 15 % of its throughput when every delivery waited).
 *
 * A durable flush that throws (COMMIT failed: disk full, I/O error) fails the turn for
 * good: what was held is discarded, later sends too, and the failure listeners run (the
 * server then drops every client and exits). Clients resend their unacknowledged ops
 * elsewhere or after a restart; nothing that was acknowledged is lost.
 */
export type SendFlush = (discard: boolean) => void;

export class Turn {
  private durables: Array<() => void> = [];
  private sends: SendFlush[] = [];
  /** The turn's first delivery while it is the only one (see `deliver`). */
  private heldDelivery: (() => void) | null = null;
  private deliveries = 0;
  private scheduled = false;
  private failure: Error | null = null;
  private readonly failureListeners = new Set<(err: Error) => void>();

  /** Runs `commit` at the end of this turn, before any send flush. A throw fails the turn. */
  beforeSend(commit: () => void): void {
    this.durables.push(commit);
    this.schedule();
  }

  /** Runs `flush` at the end of this turn, after the durable flushes; with `discard` once failed. */
  send(flush: SendFlush): void {
    if (this.failure) {
      flush(true);
      return;
    }
    this.sends.push(flush);
    this.schedule();
  }

  /**
   * Delivers a published op to local subscribers: after this turn's sends if it is the
   * turn's only delivery, else now (on the next tick, as ShareDB's own pub/sub), always in
   * publish order. Nothing is delivered from a failed turn.
   */
  deliver(task: () => void): void {
    if (this.failure) return;
    this.deliveries++;
    if (this.deliveries === 1) {
      this.heldDelivery = task;
      this.schedule();
      return;
    }
    const held = this.heldDelivery;
    this.heldDelivery = null;
    if (held) process.nextTick(held);
    process.nextTick(task);
  }

  /** The error that failed the turn, if one did. */
  get failed(): Error | null {
    return this.failure;
  }

  /** Called once when a durable flush fails. Returns the unsubscribe function. */
  onFailure(listener: (err: Error) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  /** Ends the turn now: durable flushes, then send flushes (also before a drain or close). */
  readonly flushNow = (): void => {
    this.scheduled = false;
    // Flushes may hold more work (a write callback): that goes to the next turn.
    const durables = this.durables;
    this.durables = [];
    for (const commit of durables) {
      try {
        commit();
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
      }
    }
    const sends = this.sends;
    const delivery = this.heldDelivery;
    this.sends = [];
    this.heldDelivery = null;
    this.deliveries = 0;
    const discard = this.failure !== null;
    let firstError: unknown = null;
    for (const flush of sends) {
      // One transport's bug must not keep the other clients' messages from leaving.
      try {
        flush(discard);
      } catch (err) {
        firstError ??= err;
      }
    }
    // What it sends is held for the next turn.
    if (delivery && !discard) {
      try {
        delivery();
      } catch (err) {
        firstError ??= err;
      }
    }
    if (firstError !== null) throw firstError;
  };

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flushNow);
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const listener of this.failureListeners) listener(err);
  }
}

/** Delivers a published op to this instance's subscribers: through the Turn when there is one, else on the next tick (ShareDB's timing). */
export function deliverToSubscribers(turn: Turn | undefined, deliver: () => void): void {
  if (turn) turn.deliver(deliver);
  else process.nextTick(deliver);
}
