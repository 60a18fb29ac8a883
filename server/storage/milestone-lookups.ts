/**
 * What Tandem's milestone stores (SQLite, PostgreSQL) share: the interval, ShareDB's
 * argument rules, the three lookups as "one row: a default when the bound is null, else a
 * bounded query", and how a save without a callback reports (an event, as in ShareDB).
 * Each store supplies its five lookup statements and how it runs one.
 */
import ShareDB from 'sharedb';
import { ShareDbErrorCode, TandemError } from '../../client/protocol.js';

/**
 * Save a milestone every 1000 versions by default, as sharedb-milestone-mongo: a historic
 * fetch then replays at most 999 ops, for one extra snapshot row per 1000 ops.
 */
export const DEFAULT_MILESTONE_INTERVAL = 1000;

/** ShareDB's Snapshot as stored and returned by the milestone stores. */
export interface MilestoneSnapshot {
  id: string;
  v: number;
  type: string | null;
  data?: unknown;
  m: Record<string, unknown> | null;
}

// @types/sharedb's BasicCallback shape: no error is `undefined`, not null.
export type MilestoneCallback<T> = (err?: Error, result?: T) => void;

/** The five lookups of a milestone store, as its own statements. */
export interface MilestoneLookups<S> {
  /** Newest milestone with v <= bound. */
  atOrBeforeVersion: S;
  /** Newest milestone. */
  latest: S;
  /** Oldest milestone. */
  first: S;
  /** Newest milestone with mtime <= bound. */
  atOrBeforeTime: S;
  /** Oldest milestone with mtime >= bound. */
  atOrAfterTime: S;
}

export function invalidMilestoneArgument(message: string): TandemError {
  return new TandemError(ShareDbErrorCode.MILESTONE_ARGUMENT_INVALID, message);
}

// Same rule as ShareDB's util.isValidVersion / isValidTimestamp: null or an integer >= 0.
function isValidVersionOrNull(value: unknown): value is number | null {
  return value === null || (Number.isInteger(value) && (value as number) >= 0);
}

/** Throws ShareDB's ERR_MILESTONE_ARGUMENT_INVALID for a lookup it would refuse. */
export function checkLookup(collection: unknown, id: unknown, bound: unknown, boundName: 'version' | 'timestamp'): void {
  if (!isValidVersionOrNull(bound)) throw invalidMilestoneArgument(`Invalid ${boundName}`);
  if (!collection) throw invalidMilestoneArgument('Missing collection');
  if (!id) throw invalidMilestoneArgument('Missing ID');
}

/** Throws ShareDB's ERR_MILESTONE_ARGUMENT_INVALID for a save it would refuse. */
export function checkSave(collection: unknown, snapshot: unknown): void {
  if (!collection) throw invalidMilestoneArgument('Missing collection');
  if (!snapshot) throw invalidMilestoneArgument('Missing snapshot');
}

export abstract class MilestoneStore<S> extends ShareDB.MilestoneDB {
  /** Read by ShareDB's SubmitRequest (`snapshot.v % interval === 0`). */
  readonly interval: number;

  constructor(interval = DEFAULT_MILESTONE_INTERVAL) {
    super();
    if (!Number.isInteger(interval) || interval < 1) {
      throw new Error(`milestone interval must be a positive integer, got ${interval}`);
    }
    this.interval = interval;
  }

  protected abstract lookups(): MilestoneLookups<S>;

  /**
   * Answers one lookup through `callback`: the row of `whenNull` when `bound` is null, else
   * of `bounded` with `bound` (after checkLookup).
   */
  protected abstract lookup(
    callback: MilestoneCallback<MilestoneSnapshot | undefined> | undefined,
    collection: string,
    id: string,
    bound: number | null,
    boundName: 'version' | 'timestamp',
    whenNull: S,
    bounded: S,
  ): void;

  /** Reports a failure that has no callback to take it. */
  protected abstract emitError(err: unknown): void;

  /** The newest milestone with v <= version (any version when null); undefined if none. */
  override getMilestoneSnapshot(
    collection: string,
    id: string,
    version: number | null,
    callback?: MilestoneCallback<MilestoneSnapshot | undefined>,
  ): void {
    const s = this.lookups();
    this.lookup(callback, collection, id, version, 'version', s.latest, s.atOrBeforeVersion);
  }

  /** The newest milestone with mtime <= timestamp; for null, the first milestone. */
  override getMilestoneSnapshotAtOrBeforeTime(
    collection: string,
    id: string,
    timestamp: number | null,
    callback?: MilestoneCallback<MilestoneSnapshot | undefined>,
  ): void {
    const s = this.lookups();
    this.lookup(callback, collection, id, timestamp, 'timestamp', s.first, s.atOrBeforeTime);
  }

  /** The oldest milestone with mtime >= timestamp; for null, the latest milestone. */
  override getMilestoneSnapshotAtOrAfterTime(
    collection: string,
    id: string,
    timestamp: number | null,
    callback?: MilestoneCallback<MilestoneSnapshot | undefined>,
  ): void {
    const s = this.lookups();
    this.lookup(callback, collection, id, timestamp, 'timestamp', s.latest, s.atOrAfterTime);
  }

  /**
   * The outcome of a save: to `callback`, or without one (how SubmitRequest calls it) a
   * 'save' or error event, as in ShareDB.
   */
  protected saveOutcome(collection: string, snapshot: MilestoneSnapshot, callback?: (err?: Error) => void): MilestoneCallback<void> {
    return (err) => {
      if (callback) callback(err);
      else if (!err) this.emit('save', collection, snapshot as ShareDB.Snapshot);
      else this.emitError(err);
    };
  }
}
