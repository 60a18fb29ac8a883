/**
 * Op pairs the fuzzers found, pinned as exact documents and ops (a seed's meaning changes
 * whenever the generator does; these do not). Both fuzz suites run them:
 * - transform.test.ts checks TP1 on them directly;
 * - convergence.test.ts replays them over real sockets with SDK clients: client Y commits
 *   `b` first while client X, offline, has `a` pending. ShareDB then computes exactly the
 *   pair under test: the server commits transform(a, b, 'left') and X's ShareDB applies
 *   transform(b, a, 'right').
 *
 * All are upstream json1 bugs, still present in ot-json1: transform.test.ts asserts that they
 * are (a canary that fails once json1 is fixed), that tandemJson1 satisfies TP1 on them (its
 * 'right' transform agrees with the 'left' one: ot-types/symmetric-transform.ts, which is
 * what stock ShareDB clients rely on) and that the SDK's rebase (client/rebase.ts) gives
 * exactly the server's result.
 */
import type { JSONOp } from 'ot-json1';
import type { Json } from './gen-op.js';

export interface PinnedCase {
  name: string;
  found: string;
  doc: Json;
  /** X's op, pending while `b` commits; transformed 'left'. */
  a: JSONOp;
  /** Y's op, committed first; transformed 'right' by X. */
  b: JSONOp;
  /** How json1 fails on the pair today: TP1 broken, or transform(b, a, 'right') throwing. */
  defect: 'tp1' | 'throws';
  /**
   * An op X queues after `a` (on the document after `a`). When transform(b, a, 'right')
   * throws, X cannot rebase it onto `b` and must roll it back as TANDEM_TRANSFORM_FAILED.
   */
  followUp?: JSONOp;
}

export const PINNED_CASES: readonly PinnedCase[] = [
  {
    name: "drop collision at k while the dropped item's old parent moves into a removed place",
    found:
      'an exploratory TP1 run of 10,000 pairs of queued (composed) ops, minimized by hand. ' +
      "a moves t.x to k and removes u; b inserts k = 'red' and moves t into u.y. " +
      "a;b' = {} but b;a' = {k:'red'}: transform(b, a, 'right') drops b's insert (it lost the " +
      "collision with a's drop at k) and also removes a's dropped item, while transform(a, b, 'left') " +
      "drops a's move (t went into the removed u), so b's insert survives. Plain json1 reports " +
      'different conflicts for the two directions (DROP_COLLISION vs RM_UNEXPECTED_CONTENT), against ' +
      'its own rule that both directions see the same conflict. Over the network the client that ' +
      "submitted a keeps {} while the server and every other client have {k:'red'}, at the same version.",
    doc: { t: { x: 'b' }, u: {} },
    a: [
      ['k', { d: 0 }],
      ['t', 'x', { p: 0 }],
      ['u', { r: true }],
    ],
    b: [
      ['k', { i: 'red' }],
      ['t', { p: 0 }],
      ['u', 'y', { d: 0 }],
    ],
    defect: 'tp1',
  },
  {
    name: 'a moves x onto k and removes u; b moves x into a new object inside u and sets k',
    found:
      'the convergence fuzz over real sockets, seed 79 (about one run in two, and once in 200 seeds), ' +
      "minimized with a shrinker and by hand. A stock ShareDB client with `a` pending applied b' = " +
      "transform(b, a, 'right') = remove k (b's value lost the drop collision with a's move), while the " +
      "server committed a' = transform(a, b, 'left') = remove u (a's moved x went into the removed u, so " +
      'its drop at k is gone): the client kept {} and everyone else {k: 1}, at the same version. Its next ' +
      "ops were refused as 'insert over an existing value' (ERR_OT_OP_NOT_APPLIED). Same family as the first " +
      'case (DROP_COLLISION seen from one side, RM_UNEXPECTED_CONTENT from the other).',
    doc: { x: 'q', u: {}, k: {} },
    a: [
      ['k', { r: true, d: 0 }],
      ['u', { r: true }],
      ['x', { p: 0 }],
    ],
    b: [
      ['k', { r: true, i: 1 }],
      ['u', 'n', { i: {} }, 'b', { d: 0 }],
      ['x', { p: 0 }],
    ],
    defect: 'tp1',
  },
  {
    name: 'transform throws: a moves a list and removes an item b moves a value into, b edits beside it',
    found:
      'an exploratory TP1 run over pairs of queued (composed) ops (2,000th case), minimized with a shrinker ' +
      "(dropping any one component makes it pass). transform(b, a, 'right') throws an internal " +
      'assertion (empty message) in ot-json1 lib/cursor.ts WriteCursor.flushDescent via writeOp1Drop; ' +
      "plain json1 reports RM_UNEXPECTED_CONTENT. Over the network the throw escapes ShareDB's message " +
      "handler as a Connection 'error' event (an unhandled one crashes the process); the client that " +
      'submitted a never gets its ack and stays at the old version with stale data.',
    doc: { body: 'x', items: ['x', -13, ['é']] },
    a: [
      ['blue95', { d: 0 }],
      ['items', { p: 0 }, 2, { r: true }],
    ],
    b: [
      ['body', { p: 0 }],
      ['items', [1, { ena: -1 }], [2, [0, { es: [{ d: 1 }] }], [1, { d: 0 }]], [3, { i: 0 }]],
    ],
    defect: 'throws',
    followUp: ['note', { i: 'after a' }],
  },
];
