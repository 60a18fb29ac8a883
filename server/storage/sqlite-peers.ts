import { randomUUID } from 'node:crypto';
import type { Connection } from './sqlite-connection.js';

/** How often each process renews its row. */
export const DEFAULT_HEARTBEAT_MS = 1_000;
/** A row not renewed for this long belongs to a process that is gone. */
const STALE_AFTER_BEATS = 3.5;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS tandem_writers (
    id TEXT PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL  -- ms since the epoch
  );
`;

/**
 * Which other Tandem processes write the same SQLite file, from a heartbeat table.
 *
 * Group commit holds the file's write lock for the rest of an event-loop turn, and takes it
 * again in the next turn; SQLite's busy handler makes a waiting process poll with sleeps, so
 * a busy process starves the others (measured: another instance's commits failed with
 * "database is locked" after the 5 s busy timeout). Group commit is therefore used only
 * while no other process has renewed its row lately; with peers, each commit is its own
 * short transaction again. Heartbeats rather than PIDs: containers sharing a volume do not
 * share PID namespaces.
 */
export class SqlitePeers {
  readonly id = randomUUID();
  private others = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly stmts;

  constructor(
    /** How many group-commit writers of the file this process has, this one included: the others count as peers too. */
    private readonly groupWriters: () => number,
    private readonly conn: Connection,
    /** Runs a write atomically (the writer's own transaction rules). */
    private readonly write: (fn: () => void) => void,
    private readonly heartbeatMs = DEFAULT_HEARTBEAT_MS,
  ) {
    conn.exec(SCHEMA);
    this.stmts = {
      beat: conn.prepare(`INSERT INTO tandem_writers (id, heartbeat_at) VALUES (?, ?)
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`),
      others: conn.prepare('SELECT count(*) AS n FROM tandem_writers WHERE id != ? AND heartbeat_at >= ?'),
      forgetStale: conn.prepare('DELETE FROM tandem_writers WHERE heartbeat_at < ?'),
      leave: conn.prepare('DELETE FROM tandem_writers WHERE id = ?'),
    };
  }

  /** Registers this process and renews it every heartbeat; the timer does not hold the process open. */
  start(): void {
    this.beat();
    this.timer = setInterval(() => {
      try {
        this.beat();
      } catch {
        // A busy or failing file: keep the last answer; the commit path reports store errors.
      }
    }, this.heartbeatMs);
    this.timer.unref();
  }

  /** True while no other writer is in this process, nor has renewed its heartbeat lately. */
  get alone(): boolean {
    // Two servers in one process on one file (tests do that) must not group either: the
    // second one's write would wait for the first one's lock in the thread that ends the turn.
    return this.others === 0 && this.groupWriters() <= 1;
  }

  /** Removes this process's row (when the connection closes). */
  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
    if (this.conn.open) this.write(() => this.stmts.leave.run(this.id));
  }

  private beat(): void {
    const now = Date.now();
    const staleBefore = now - this.heartbeatMs * STALE_AFTER_BEATS;
    this.write(() => {
      this.stmts.beat.run(this.id, now);
      this.stmts.forgetStale.run(staleBefore);
    });
    this.others = (this.stmts.others.get(this.id, staleBefore) as { n: number }).n;
  }
}
