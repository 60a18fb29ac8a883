import type { JSONOp } from 'ot-json1';
import type { Connection } from 'sharedb/lib/client/index.js';
import type { LockManagerLike } from './offline/doc-lock.js';
import type { OutboxStore } from './offline/outbox-store.js';
import type { ErrorCode, TandemError } from './protocol.js';

/** `T` with every property and element read-only: `data` is ShareDB's live state. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? ReadonlyArray<DeepReadonly<U>>
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export interface DocOptions<T> {
  /** Create the document with this data if the server does not have it (needs a connection). */
  create?: T;
  /**
   * Compose consecutive unsent local ops into one (ShareDB's default, true): fewer, larger
   * commits. false: one server op per `submit`.
   */
  composeOps?: boolean;
  /**
   * When the server no longer has the history our unacknowledged ops need (a client offline
   * longer than OPLOG_RETENTION): 'reexpress' (default) turns them into ops on the current
   * document (see reexpress.ts) and sends those, reporting through 'rejected' any op whose
   * target was removed meanwhile; 'stall' keeps them and stops sending until `retry()` or
   * `discardPending()`.
   */
  onMissingHistory?: 'reexpress' | 'stall';
}

/** Where an 'op' event's op came from. */
export interface OpMeta {
  /** 'local': our submit; 'remote': committed by someone else; 'rollback': undoes our refused op. */
  source: 'local' | 'remote' | 'rollback';
}

/** An op the server refused for good; it has already been rolled back locally. */
export interface OpRejection {
  code: ErrorCode;
  message: string;
  /** The refused op as it was sent (null when unknown). */
  op: JSONOp | null;
  error: TandemError;
}

export type DocEvents = {
  /** An op was applied to `data`. */
  op: [op: JSONOp, meta: OpMeta];
  /** `data` changed (an op, a load, a restore, or a rebuild after a remote op: see DocSync). */
  change: [];
  /** The server refused an op (invalid, forbidden, too large…); it was rolled back. */
  rejected: [rejection: OpRejection];
  /**
   * The server cannot rebase our pending ops (and they could not be re-expressed, or
   * `onMissingHistory: 'stall'`); they are kept, and sending stops until `retry()`.
   */
  stalled: [error: TandemError];
  /** Any other error (subscription, outbox…). */
  error: [error: TandemError];
};

/** @internal What a DocHandle needs from its client. */
export interface DocContext {
  connection: Connection;
  outbox: OutboxStore | null;
  locks: LockManagerLike | null;
  saveDelayMs: number;
  retryDelayMs: number;
  maxRetries: number;
  /** This client's source id (null until known: with auth, after the first token) and next seq. */
  identity: { src(): string | null; nextSeq(): number };
  /** Gets a fresh token to the server (after TANDEM_TOKEN_EXPIRED); resolves once online with it. */
  reauthenticate(): Promise<void>;
  randomId(): string;
  watchConnection(listener: (online: boolean) => void): () => void;
  released(collection: string, id: string): void;
}
