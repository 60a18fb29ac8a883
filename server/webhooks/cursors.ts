/**
 * Where each webhook target stands, per document: the next version to deliver. Kept in the
 * store beside the ops (SQLite, PostgreSQL), so a restart resumes from it and op-log
 * compaction never removes ops a target has not received; in memory for `memory:`.
 */
export interface WebhookCursors {
  /**
   * Makes sure `target` has a cursor for the document, at `v` if it had none. Written before
   * the op's ack leaves (in the same SQLite transaction; awaited on PostgreSQL), so an
   * acknowledged op is always delivered, also after a crash.
   */
  ensure(target: string, collection: string, id: string, v: number): void | Promise<void>;
  /** Moves the cursor to `to` (never back). */
  advance(target: string, collection: string, id: string, to: number): Promise<void>;
  /** Documents with ops `target` has not received: their cursor is below their version. */
  backlog(target: string): Promise<Array<{ collection: string; id: string; v: number }>>;
}

/** Cursors of a process without a durable store: lost with it, as its documents are. */
export class MemoryWebhookCursors implements WebhookCursors {
  private readonly cursors = new Map<string, number>();

  private key(target: string, collection: string, id: string): string {
    return JSON.stringify([target, collection, id]);
  }

  ensure(target: string, collection: string, id: string, v: number): void {
    const key = this.key(target, collection, id);
    if (!this.cursors.has(key)) this.cursors.set(key, v);
  }

  async advance(target: string, collection: string, id: string, to: number): Promise<void> {
    const key = this.key(target, collection, id);
    this.cursors.set(key, Math.max(this.cursors.get(key) ?? 0, to));
  }

  async backlog(): Promise<Array<{ collection: string; id: string; v: number }>> {
    // Nothing survives a restart, and within the process the dispatcher knows its backlog.
    return [];
  }
}
