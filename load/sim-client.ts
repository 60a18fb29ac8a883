/**
 * One simulated user: a connection, one document, a schedule of actions (open loop at a
 * Poisson rate, or closed loop with one op in flight), and optional chaos disconnects.
 *
 * Latency is timed from the moment an action was *scheduled*, not from when the timer got
 * to run it: when the worker falls behind, the delay counts against latency instead of
 * silently lowering the offered load (coordinated omission).
 */
import { performance } from 'node:perf_hooks';
import type { ConnectFn, LoadConnection, LoadDocHandle } from './adapter-types.js';
import { errorCode } from './adapter-types.js';
import type { WorkerOptions } from './ipc.js';
import type { ClientPlan } from './plan.js';
import type { Recorder } from './recorder.js';
import { createRng, hashSeed, type Rng } from './rng.js';
import type { SeenLedger } from './seen-ledger.js';
import { clientSub, tokenGetter } from './tokens.js';
import { ClientWorkload, INITIAL_DOC, type LoadPresence } from './workload.js';

/** Ops a client may have unacknowledged before it drops new ones (counted as
 * LOAD_BACKLOG_FULL): bounds memory when an open-loop rate exceeds what the server takes. */
const MAX_PENDING = 500;
/** Most overdue actions one timer callback catches up on. */
const MAX_BURST = 50;

export class SimClient {
  connection: LoadConnection | null = null;
  doc: LoadDocHandle | null = null;
  pending = 0;
  private readonly rng: Rng;
  private readonly chaosRng: Rng;
  private readonly workload: ClientWorkload;
  private running = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private chaosTimer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped on every disconnect (chaos or not): an op whose ack arrives in a later epoch was
   * delayed by a disconnect and is left out of the latency histograms. */
  private epoch = 0;
  /** When this client last (re)connected, ms (performance.now()). */
  onlineSince = 0;
  private nextAt = 0;
  /** Newest presence stamp seen per sending client. */
  private readonly presenceStamps = new Map<number, number>();

  constructor(
    readonly plan: ClientPlan,
    private readonly options: WorkerOptions,
    private readonly connect: ConnectFn,
    private readonly recorder: Recorder,
    private readonly ledger: SeenLedger,
  ) {
    this.rng = createRng(hashSeed(options.seed, plan.index, 'ops'));
    this.chaosRng = createRng(hashSeed(options.seed, plan.index, 'chaos'));
    this.workload = new ClientWorkload(plan.index, options.mix, this.rng);
  }

  async open(): Promise<void> {
    const connection = await this.connect({ url: this.plan.url, getToken: tokenGetter(this.options.auth, clientSub(this.plan.index)) });
    this.connection = connection;
    connection.onError((code) => this.recorder.error(code));
    connection.onReconnect(() => {
      this.recorder.reconnects++;
      this.epoch++;
      this.onlineSince = performance.now();
    });
    await connection.whenConnected(this.options.connectTimeoutMs);
    this.onlineSince = performance.now();
  }

  async openDoc(withPresence: boolean): Promise<void> {
    const doc = this.connection!.doc(this.options.collection, this.plan.docId);
    await doc.open(this.plan.creator ? INITIAL_DOC : undefined);
    doc.onRemoteOp((version) => this.ledger.seen(version, performance.now(), this.onlineSince));
    if (withPresence) {
      doc.onPresence((value) => this.presenceSeen(value));
      await doc.subscribePresence();
    }
    this.doc = doc;
  }

  start(): void {
    if (this.running || !this.doc) return;
    this.running = true;
    const rate = this.options.rate;
    if (rate === 'max') {
      void this.closedLoop();
    } else if (rate > 0) {
      this.nextAt = performance.now() + this.rng.exp(1000 / rate);
      this.schedule();
    }
    if (this.options.chaosPerMin > 0) this.scheduleChaos();
  }

  /** Stops acting and brings the client back online for the drain and convergence check. */
  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.chaosTimer) clearTimeout(this.chaosTimer);
    this.timer = this.chaosTimer = null;
    this.connection?.goOnline();
  }

  close(): void {
    this.stop();
    this.connection?.close();
  }

  private schedule(): void {
    const delay = Math.max(0, this.nextAt - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.running) return;
      const now = performance.now();
      const mean = 1000 / (this.options.rate as number);
      for (let burst = 0; this.nextAt <= now && burst < MAX_BURST; burst++) {
        void this.act(this.nextAt);
        this.nextAt += this.rng.exp(mean);
      }
      // Further behind than a burst: skip ahead rather than spin (counted as backlog).
      if (this.nextAt <= now) {
        this.recorder.error('LOAD_GENERATOR_BEHIND');
        this.nextAt = now + this.rng.exp(mean);
      }
      this.schedule();
    }, delay);
  }

  private async closedLoop(): Promise<void> {
    while (this.running) {
      const acted = await this.act(performance.now());
      // Yield to I/O between ops (and back off when there was nothing to do).
      await new Promise((resolve) => (acted ? setImmediate(resolve) : setTimeout(resolve, 5)));
    }
  }

  /** Performs one scheduled action; resolves when it settles. Returns false if skipped. */
  private async act(scheduledAt: number): Promise<boolean> {
    const doc = this.doc!;
    const action = this.workload.next(doc.data);
    if (!action) return false;
    if (action.kind === 'presence') {
      this.recorder.presenceSent++;
      try {
        await doc.submitPresence(this.workload.presenceValue(action.caret, scheduledAt));
      } catch (err) {
        this.recorder.error(errorCode(err));
      }
      return true;
    }
    if (this.pending >= MAX_PENDING) {
      this.recorder.error('LOAD_BACKLOG_FULL');
      return false;
    }
    const epoch = this.epoch;
    this.recorder.submitted++;
    this.pending++;
    try {
      const version = await doc.submit(action.op);
      const now = performance.now();
      const delayed = epoch !== this.epoch;
      if (delayed) {
        this.recorder.acked++;
        this.recorder.delayedByDisconnect++;
      } else {
        this.recorder.recordAck(now - scheduledAt);
      }
      this.ledger.acked(version, scheduledAt, delayed, now);
    } catch (err) {
      this.recorder.failed++;
      this.recorder.error(errorCode(err));
    } finally {
      this.pending--;
    }
    return true;
  }

  private presenceSeen(value: unknown): void {
    const user = (value as Partial<LoadPresence> | null)?.user;
    if (!user || typeof user.t !== 'number' || typeof user.c !== 'number' || user.c === this.plan.index) return;
    // ShareDB re-emits every remote presence, transformed, after each op: time only the
    // first arrival of each update.
    if ((this.presenceStamps.get(user.c) ?? -1) >= user.t) return;
    this.presenceStamps.set(user.c, user.t);
    if (this.onlineSince > user.t) return;
    this.recorder.recordPresence(performance.now() - user.t);
  }

  private scheduleChaos(): void {
    const meanMs = 60_000 / this.options.chaosPerMin;
    this.chaosTimer = setTimeout(() => {
      if (!this.running) return;
      this.recorder.chaosDisconnects++;
      this.epoch++;
      this.connection!.goOffline();
      const [min, max] = this.options.chaosOfflineMs;
      this.chaosTimer = setTimeout(
        () => {
          if (!this.running) return;
          this.connection!.goOnline();
          this.scheduleChaos();
        },
        min + this.chaosRng.next() * (max - min),
      );
    }, this.chaosRng.exp(meanMs));
  }
}
