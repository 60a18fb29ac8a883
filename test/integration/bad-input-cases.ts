/**
 * The bad inputs of bad-input.test.ts: each frame, how its reply is recognised, and the code
 * it must earn. Shared constants (document, limits) live here too.
 */
import { ShareDbErrorCode, TandemErrorCode } from '../../client/protocol.js';
import type { TestServer } from '../helpers/server.js';
import { type WireClient, preview, type Json } from './bad-input-wire.js';

export const C = 'docs';
export const D = 'd1';
export const MISSING = 'never-created';
export const INITIAL = { title: 'hello', n: 5, list: [] as unknown[] };

/** Small limits keep the oversized inputs small: frames over 8 KiB are refused, over 16 KiB cut. */
export const MAX_OP_BYTES = 2048;
export const MAX_OP_DEPTH = 16;
export const MAX_FRAME_BYTES = 4 * MAX_OP_BYTES; // config default: 4 × MAX_OP_BYTES
export const LIMITS = { MAX_OP_BYTES: String(MAX_OP_BYTES), MAX_OP_DEPTH: String(MAX_OP_DEPTH) };

/** A stable code is a ShareDB `ERR_…` or a Tandem `TANDEM_…` constant. */
export const STABLE_CODE = /^(ERR|TANDEM)_[A-Z0-9_]+$/;

export function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

const FRAME_CODES = new Set(['TANDEM_BAD_FRAME', 'TANDEM_FRAME_TOO_LARGE']);
const ECHOED = new Set(['a', 'c', 'd', 'src', 'ch', 'seq', 'id', 'v']);

/**
 * The reply MessageStream sends for a frame ShareDB never saw: a frame-level code, and
 * besides `error` only the request fields it echoes (when the frame was still JSON) so
 * the client can fail the matching request.
 */
export const isFrameError = (m: Json): boolean =>
  m.error !== undefined && FRAME_CODES.has(m.error.code) && Object.keys(m).every((k) => k === 'error' || ECHOED.has(k));

let tagCounter = 0;

export interface Fixture {
  server: TestServer;
  wire: WireClient;
  /** A second connection on the same transport, subscribed to the same document. */
  peer: WireClient;
}

/** What a bad input sends and how its reply is recognised. */
export type Sender = (f: Fixture) => Promise<Json>;

/** Raw text frame; reply is a transport-level `{error}`. */
export const rawFrame =
  (text: string): Sender =>
  ({ wire }) =>
    wire.exchange(text, isFrameError, `frame error for ${preview(text, 60)}`);

/**
 * A ShareDB message; ShareDB echoes a refused request with `error`, found by a unique tag.
 * An op message with a numeric seq is also matched by its ack, so a wrongly accepted op
 * fails the assertion instead of timing out.
 */
export const tagged =
  (message: Record<string, unknown>): Sender =>
  ({ wire }) => {
    const tag = `t${++tagCounter}`;
    const seq = message.seq === 'own' ? wire.nextSeq() : message.seq;
    const full = message.seq === 'own' ? { ...message, seq, src: wire.src, tag } : { ...message, tag };
    const isAck = (m: Json) => typeof seq === 'number' && m.a === 'op' && m.seq === seq && m.src === wire.src;
    return wire.exchange(full, (m) => m.tag === tag || isAck(m), `reply to ${preview(message, 60)}`);
  };

/** An op message from this client (src/seq filled in); reply matched by seq. */
export const opMessage =
  (fields: Record<string, unknown>): Sender =>
  ({ wire }) =>
    wire.submit(fields);

export interface BadInput {
  name: string;
  send: Sender;
  code: string;
  /** Documents that must still not exist afterwards. */
  staysMissing?: string[];
}

export const badInputs: BadInput[] = [
  // Frames that are not JSON objects: Tandem's MessageStream answers, ShareDB never sees them.
  { name: 'non-JSON text', send: rawFrame('this is {not json'), code: TandemErrorCode.BAD_FRAME },
  { name: 'empty text', send: rawFrame(''), code: TandemErrorCode.BAD_FRAME },
  { name: 'truncated JSON', send: rawFrame('{"a":"op","c":"docs","d":"d1","v":1,"op":["li'), code: TandemErrorCode.BAD_FRAME },
  { name: 'a JSON array', send: rawFrame('[{"a":"hs","protocol":1}]'), code: TandemErrorCode.BAD_FRAME },
  { name: 'a JSON number', send: rawFrame('42'), code: TandemErrorCode.BAD_FRAME },
  { name: 'a JSON string', send: rawFrame('"hs"'), code: TandemErrorCode.BAD_FRAME },
  { name: 'JSON null', send: rawFrame('null'), code: TandemErrorCode.BAD_FRAME },
  { name: 'JSON true', send: rawFrame('true'), code: TandemErrorCode.BAD_FRAME },
  {
    name: 'a frame over MAX_FRAME_BYTES (characters)',
    send: rawFrame(`{"a":"pp","pad":"${'x'.repeat(MAX_FRAME_BYTES + 200)}"}`),
    code: TandemErrorCode.FRAME_TOO_LARGE,
  },
  {
    // ~4.2 k characters but ~8.4 k UTF-8 bytes: the limit is in bytes.
    name: 'a frame over MAX_FRAME_BYTES only in UTF-8 bytes',
    send: rawFrame(`{"a":"pp","pad":"${'é'.repeat(MAX_FRAME_BYTES / 2 + 100)}"}`),
    code: TandemErrorCode.FRAME_TOO_LARGE,
  },
  // Unknown or missing actions: ShareDB's own code.
  { name: 'an unknown action {a:"zz"}', send: tagged({ a: 'zz' }), code: ShareDbErrorCode.BADLY_FORMED },
  { name: 'a message without an action', send: tagged({ c: C, d: D }), code: ShareDbErrorCode.BADLY_FORMED },
  { name: 'an action that is not a string', send: tagged({ a: 7, c: C, d: D }), code: ShareDbErrorCode.BADLY_FORMED },
  // Wrong field types and values, each on a message that would otherwise change the document.
  ...(
    [
      ['an op with a negative version', { a: 'op', c: C, d: D, v: -1, seq: 'own', op: ['list', 0, { i: 1 }] }],
      ['an op with a string version', { a: 'op', c: C, d: D, v: '1', seq: 'own', op: ['list', 0, { i: 1 }] }],
      ['an op with a non-number seq', { a: 'op', c: C, d: D, v: 1, seq: 'x', op: ['list', 0, { i: 1 }] }],
      ['an op with an object as doc id', { a: 'op', c: C, d: { id: D }, v: 1, seq: 'own', op: ['list', 0, { i: 1 }] }],
      ['an op on collection __proto__', { a: 'op', c: '__proto__', d: D, v: 1, seq: 'own', op: ['list', 0, { i: 1 }] }],
      ['an op on doc id constructor', { a: 'op', c: C, d: 'constructor', v: 1, seq: 'own', op: ['list', 0, { i: 1 }] }],
      ['a subscribe to doc id __proto__', { a: 's', c: C, d: '__proto__' }],
      ['a bulk subscribe with a negative version', { a: 'bs', c: C, b: { [D]: -1 } }],
      ['a bulk subscribe whose b is a string', { a: 'bs', c: C, b: 'd1' }],
      ['a presence message with an object id', { a: 'p', c: C, d: D, id: {}, v: 1, pv: 1, p: null }],
      // ShareDB checks c and d only when they are not null; without them the store is asked.
      ['a create with no collection', { a: 'op', d: MISSING, v: null, seq: 'own', create: { type: 'json1', data: {} } }],
      ['a create with a null doc id', { a: 'op', c: C, d: null, v: null, seq: 'own', create: { type: 'json1', data: {} } }],
      ['a query with a null collection', { a: 'qf', id: 5, c: null, q: {} }],
      // ShareDB means to answer this with 'Invalid op message' but reads `op.seq` first (agent.js).
      ['an op message with no op, create or del', { a: 'op', c: C, d: D, v: 1, seq: 'own' }],
    ] as const
  ).map(([what, message]): BadInput => ({ name: what, send: tagged(message), code: ShareDbErrorCode.BADLY_FORMED })),
  {
    name: 'a delete whose del is not true',
    send: tagged({ a: 'op', c: C, d: D, v: 1, seq: 'own', del: 'yes' }),
    code: 'ERR_OT_OP_BADLY_FORMED',
  },
  {
    name: 'an op with a version from the future',
    send: tagged({ a: 'op', c: C, d: D, v: 99, seq: 'own', op: ['list', 0, { i: 1 }] }),
    code: 'ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT',
  },
  // Ops that are not valid json1.
  ...(
    [
      ['an unknown component key', [{ zz: 1 }]],
      ['two components in a row', ['a', { r: true }, { i: 1 }]],
      ['an empty op', []],
      ['a number', 5],
      ['a string', 'x'],
      ['an object', { i: 1 }],
      ['nested descents', [['list', { i: 1 }]]],
      ['a path with no component', ['title']],
      ['a pick without a drop', ['list', { p: 0 }]],
      ['an edit without a type', ['title', { e: {} }]],
      ['an edit of an unknown type', ['title', { et: 'nope', e: 1 }]],
    ] as const
  ).map(
    ([what, op]): BadInput => ({
      name: `an invalid json1 op: ${what} ${JSON.stringify(op)}`,
      send: opMessage({ c: C, d: D, v: 1, op }),
      code: TandemErrorCode.INVALID_OP,
    }),
  ),
  // A well-formed op for a document that does not exist.
  {
    name: 'an op on a document that does not exist',
    send: opMessage({ c: C, d: MISSING, v: 0, op: ['a', { i: 1 }] }),
    code: ShareDbErrorCode.DOC_DOES_NOT_EXIST,
    staysMissing: [MISSING],
  },
  {
    name: 'an op with v:null on a document that does not exist',
    send: opMessage({ c: C, d: MISSING, v: null, op: ['a', { i: 1 }] }),
    code: ShareDbErrorCode.DOC_DOES_NOT_EXIST,
    staysMissing: [MISSING],
  },
  // Limits.
  {
    name: `an op over MAX_OP_BYTES (${MAX_OP_BYTES})`,
    send: opMessage({ c: C, d: D, v: 1, op: ['big', { i: 'x'.repeat(MAX_OP_BYTES + 500) }] }),
    code: TandemErrorCode.OP_TOO_LARGE,
  },
  {
    name: 'a created document over MAX_OP_BYTES',
    send: opMessage({ c: C, d: MISSING, v: null, create: { type: 'json1', data: { big: 'x'.repeat(MAX_OP_BYTES + 500) } } }),
    code: TandemErrorCode.OP_TOO_LARGE,
    staysMissing: [MISSING],
  },
  {
    name: `an op nested deeper than MAX_OP_DEPTH (${MAX_OP_DEPTH})`,
    send: opMessage({ c: C, d: D, v: 1, op: ['deep', { i: nested(MAX_OP_DEPTH + 10) }] }),
    code: TandemErrorCode.OP_TOO_DEEP,
  },
  {
    name: 'a created document nested deeper than MAX_OP_DEPTH',
    send: opMessage({ c: C, d: MISSING, v: null, create: { type: 'json1', data: { deep: nested(MAX_OP_DEPTH + 10) } } }),
    code: TandemErrorCode.OP_TOO_DEEP,
    staysMissing: [MISSING],
  },
  // A create or del that is there but empty (null, false, 0, ""): ShareDB would build no op.
  ...[null, false, 0, ''].flatMap((empty): BadInput[] => [
    {
      name: `a create of ${JSON.stringify(empty)}`,
      send: opMessage({ c: C, d: MISSING, v: null, create: empty }),
      code: 'ERR_MESSAGE_BADLY_FORMED',
      staysMissing: [MISSING],
    },
    { name: `a del of ${JSON.stringify(empty)}`, send: opMessage({ c: C, d: D, v: 1, del: empty }), code: 'ERR_MESSAGE_BADLY_FORMED' },
  ]),
  // Types other than json1.
  // json0 is a type ShareDB knows; 'no-such-type' is one it does not (it used to answer ERR_OT_OP_BADLY_FORMED).
  ...['json0', 'http://sharejs.org/types/JSONv0', 'no-such-type'].map(
    (type): BadInput => ({
      name: `a create with type ${type}`,
      send: opMessage({ c: C, d: MISSING, v: null, create: { type, data: {} } }),
      code: TandemErrorCode.UNSUPPORTED_TYPE,
      staysMissing: [MISSING],
    }),
  ),
  // Valid json1 ops that do not apply to this document.
  ...(
    [
      ['removes a key that does not exist', ['nope', { r: true }]],
      ['inserts under a missing parent', ['missing', 'child', { i: 1 }]],
      ['inserts over an existing key', ['title', { i: 'x' }]],
      ['removes past the end of a list', ['list', 3, { r: true }]],
      ['edits text past its end', ['title', { es: [99, 'x'] }]],
    ] as const
  ).map(
    ([what, op]): BadInput => ({
      name: `a json1 op that ${what} ${JSON.stringify(op)}`,
      send: opMessage({ c: C, d: D, v: 1, op }),
      code: ShareDbErrorCode.OP_NOT_APPLIED,
    }),
  ),
];
