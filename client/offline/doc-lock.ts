/**
 * One owner per document outbox: two tabs writing the same outbox record would each resend
 * the other's ops or overwrite its pending edits. The owner tab keeps the outbox; other
 * tabs open the document without it and follow through the server.
 */

/** The part of the Web Locks API (`navigator.locks`) the SDK uses. */
export interface LockManagerLike {
  request(
    name: string,
    options: { ifAvailable?: boolean; mode?: 'exclusive' | 'shared' },
    callback: (lock: unknown) => unknown,
  ): Promise<unknown>;
}

/** A held lock; `release()` is idempotent. */
export interface DocLease {
  release(): void;
}

/** `navigator.locks` when the platform has it (browsers, Node ≥ 22 in part), else null. */
export function defaultLockManager(): LockManagerLike | null {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return nav?.locks ?? null;
}

/** A lease that guards nothing, for platforms without Web Locks (one process per outbox). */
const UNGUARDED: DocLease = Object.freeze({ release: () => undefined });

export function docLockName(outboxName: string, collection: string, id: string): string {
  return `tandem-outbox:${JSON.stringify([outboxName, collection, id])}`;
}

/**
 * Takes the document's lock if nobody holds it. Resolves to a lease, or null when another
 * tab (or client) owns the document's outbox. Without a lock manager every caller owns it.
 */
export function acquireDocLock(locks: LockManagerLike | null, name: string): Promise<DocLease | null> {
  if (!locks) return Promise.resolve(UNGUARDED);
  return new Promise<DocLease | null>((resolve, reject) => {
    locks
      .request(name, { ifAvailable: true, mode: 'exclusive' }, (lock) => {
        if (!lock) {
          resolve(null);
          return undefined;
        }
        // The lock is held for as long as this promise is pending.
        return new Promise<void>((release) => {
          let released = false;
          resolve({
            release: () => {
              if (released) return;
              released = true;
              release();
            },
          });
        });
      })
      .catch(reject);
  });
}
