/**
 * Seeded generator of malformed ShareDB frames for the malformed-frames fuzz: random bytes
 * and text, JSON that is not an object, truncated and mutated ShareDB messages (every
 * action, wrong field types, huge and negative numbers, dangerous names, `__proto__` keys,
 * bad bulk `b`, garbage presence), and nesting from shallow to stack-overflowing deep.
 *
 * One rule keeps the oracle simple: a frame never carries a valid change to a pre-existing
 * document (`guardExisting`), so after the fuzz every pre-existing document must be exactly
 * as it was. Frames may create and edit other documents freely.
 */
import { validateJson1Op, type OpLimits } from '../../ot-types/index.js';
import { deepArrayText } from './bad-input-wire.js';
import type { Rng } from '../fuzz/rng.js';

export type SendMode =
  /** A text frame (socket.io: a string event argument). */
  | 'text'
  /** ws: a binary frame; socket.io: a Buffer argument. */
  | 'binary'
  /** socket.io only: a non-string event argument (object, number, …). */
  | 'value'
  /** socket.io only: several event arguments. */
  | 'args'
  /** ws only: a text frame whose bytes are not valid UTF-8 (ws must close: RFC 6455 §8.1). */
  | 'bad-utf8';

export interface FuzzFrame {
  /** Generator family, for the summary. */
  kind: string;
  mode: SendMode;
  payload: unknown;
}

export interface DocRef {
  c: string;
  d: string;
}

export interface FrameContext {
  transport: 'socket.io' | 'ws';
  existing: readonly DocRef[];
  /** The fuzzing connection's handshake id (its ops' src). */
  src: string;
  limits: OpLimits;
}

const DANGEROUS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf'];
const WEIRD_NAMES = [
  '',
  ' ',
  '.',
  '..',
  '/',
  'a/b',
  '%00',
  '\u0000',
  'docs\u0000alpha',
  '😀',
  'x'.repeat(300),
  'ALPHA',
  'alpha ',
  'o_docs',
  'sqlite_master',
  "'; DROP TABLE ops; --",
];
const ACTIONS = [
  'init',
  'hs',
  'qf',
  'qs',
  'qu',
  'q',
  'bf',
  'bs',
  'bu',
  'f',
  'fixup',
  's',
  'u',
  'op',
  'nf',
  'nt',
  'pp',
  'p',
  'ps',
  'pu',
  'pr',
];
// biome-ignore lint/correctness/noPrecisionLoss: 2^53 + 1 is here because JSON cannot hold it exactly
const EXTREME_NUMBERS = [0, -1, -0.5, 1.5, 2 ** 31, 2 ** 53 + 2, -(2 ** 53) - 2, 1e308, -1e308, 5e-324, 9007199254740993];
const FIELDS = [
  'a',
  'c',
  'd',
  'v',
  'seq',
  'src',
  'op',
  'create',
  'del',
  'b',
  'q',
  'id',
  'ch',
  'p',
  'pv',
  't',
  'ts',
  'r',
  'o',
  'x',
  'm',
  'protocol',
  'protocolMinor',
  'data',
  'type',
  'error',
];
/** Ops that pass validation (or look as if they might); the guard keeps them off existing docs. */
const PLAUSIBLE_OPS: unknown[] = [
  ['list', 0, { i: 'fuzz' }],
  ['title', { r: true, i: 'fuzz' }],
  ['fuzzKey', { i: { nested: [1, 2] } }],
  ['text', { es: [0, 'fuzz'] }],
  ['n', { ena: 1 }],
  ['list', 0, { r: true }],
  [{ r: true, i: {} }],
  null,
  ['list', { p: 0 }, 1, { d: 0 }],
];
/** Ops json1 (and so the server) must refuse. */
export const INVALID_OPS: unknown[] = [
  [{ zz: 1 }],
  ['a', { r: true }, { i: 1 }],
  [],
  5,
  'x',
  { i: 1 },
  [['a', { i: 1 }]],
  ['a'],
  ['a', { p: 0 }],
  ['a', { e: {} }],
  ['a', { et: 'nope', e: 1 }],
  [null],
  [true, { i: 1 }],
  ['a', { i: 1, r: 1, p: 'x' }],
];
const PRINTABLE = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 {}[]":,\\/.-+eE_';
const EXOTIC = ['\u0000', '\u0007', '\n', '\t', '\u2028', '\ufeff', '\ud800', '\udfff', 'é', '漢', '😀', '\u202e'];

function randomString(rng: Rng, max = 40): string {
  let out = '';
  const length = rng.int(max + 1);
  for (let i = 0; i < length; i++) out += rng.chance(0.85) ? PRINTABLE[rng.int(PRINTABLE.length)] : rng.pick(EXOTIC);
  return out;
}

/** An own property even when the key is `__proto__` (plain assignment would set the prototype). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, configurable: true, writable: true });
}

function randomName(rng: Rng, ctx: FrameContext, kind: 'c' | 'd'): unknown {
  const roll = rng.next();
  if (roll < 0.35 && ctx.existing.length) return rng.pick(ctx.existing)[kind];
  if (roll < 0.5) return rng.pick(DANGEROUS);
  if (roll < 0.62) return rng.pick(WEIRD_NAMES);
  if (roll < 0.8) return `fz${rng.int(50)}`;
  return randomValue(rng, 1);
}

export function randomValue(rng: Rng, depth: number): unknown {
  const roll = rng.int(depth > 3 ? 7 : 10);
  switch (roll) {
    case 0:
      return rng.pick(EXTREME_NUMBERS);
    case 1:
      return rng.int(2000) - 1000;
    case 2:
      return randomString(rng);
    case 3:
      return rng.pick([...DANGEROUS, ...ACTIONS]);
    case 4:
      return rng.chance(0.5);
    case 5:
      return null;
    case 6:
      return rng.pick([...INVALID_OPS, ...PLAUSIBLE_OPS]);
    case 7:
    case 8: {
      const list: unknown[] = [];
      for (let i = rng.int(4); i > 0; i--) list.push(randomValue(rng, depth + 1));
      return list;
    }
    default: {
      const obj: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) {
        const key = rng.chance(0.3) ? rng.pick(DANGEROUS) : rng.chance(0.5) ? rng.pick(FIELDS) : randomString(rng, 8);
        setOwn(obj, key, randomValue(rng, depth + 1));
      }
      return obj;
    }
  }
}

/** A well-formed message of a random action, aimed at a random (often existing) document. */
function template(rng: Rng, ctx: FrameContext): Record<string, unknown> {
  const target = ctx.existing.length && rng.chance(0.6) ? rng.pick(ctx.existing) : { c: `fz${rng.int(5)}`, d: `doc${rng.int(20)}` };
  const { c, d } = target;
  const v = rng.chance(0.2) ? null : rng.int(12);
  const seq = rng.range(1, 1e6);
  switch (rng.int(17)) {
    case 0:
      return { a: 'hs', id: rng.chance(0.5) ? null : ctx.src, protocol: 1, protocolMinor: 2 };
    case 1:
      return { a: 's', c, d, v };
    case 2:
      return { a: 'u', c, d };
    case 3:
      return { a: 'f', c, d, v };
    case 4:
      return { a: 'op', c, d, v, src: ctx.src, seq, op: rng.pick([...PLAUSIBLE_OPS, ...INVALID_OPS]) };
    case 5:
      return {
        a: 'op',
        c,
        d,
        v: null,
        src: ctx.src,
        seq,
        create: {
          type: rng.pick(['json1', 'http://sharejs.org/types/JSONv1', 'json0', 'text', 'rich-text', '__proto__', 'constructor']),
          data: randomValue(rng, 2),
        },
      };
    case 6:
      return { a: 'op', c, d, v, src: ctx.src, seq, del: true };
    case 7: {
      const ids = [d, `doc${rng.int(20)}`];
      return { a: rng.pick(['bf', 'bs', 'bu']), c, b: rng.chance(0.5) ? ids : Object.fromEntries(ids.map((id) => [id, rng.int(5)])) };
    }
    case 8:
      return {
        a: rng.pick(['qf', 'qs']),
        id: rng.int(1000),
        c,
        q: rng.pick([
          {},
          { title: 'alpha' },
          { $sort: { n: 1 } },
          { $count: true },
          { n: { $gt: 0 } },
          { $where: 'this.n > 0' },
          { $limit: 1, $skip: 1 },
        ]),
      };
    case 9:
      return { a: 'qu', id: rng.int(1000) };
    case 10:
      return { a: 'nf', c, d, v };
    case 11:
      return { a: 'nt', c, d, ts: rng.pick([Date.now(), 0, -1, 1e308]) };
    case 12:
      return {
        a: 'p',
        ch: `${c}.${d}`,
        c,
        d,
        id: `pres${rng.int(10)}`,
        v: rng.int(12),
        pv: rng.int(5),
        seq,
        p: randomValue(rng, 2),
        t: rng.pick(['http://sharejs.org/types/JSONv1', 'json1', 'json0', undefined]),
      };
    case 13:
      return { a: rng.pick(['ps', 'pu', 'pr']), ch: rng.chance(0.7) ? `${c}.${d}` : randomName(rng, ctx, 'c'), seq };
    case 14:
      return { a: 'pp' };
    case 15:
      return { a: rng.pick(['init', 'q', 'fixup', 'zz', '', 'OP', 'op ']), c, d };
    default:
      return { a: 'op', c, d, v, src: ctx.src, seq, op: ['list', 0, { i: 'x' }], create: { type: 'json1', data: {} }, del: true };
  }
}

/** One to three corruptions of a template: wrong types, missing fields, odd names, extremes. */
function mutate(rng: Rng, ctx: FrameContext, message: Record<string, unknown>): void {
  for (let n = rng.range(1, 3); n > 0; n--) {
    const keys = Object.keys(message);
    switch (rng.int(8)) {
      case 0:
        setOwn(message, rng.pick(keys.length ? keys : FIELDS), randomValue(rng, 0));
        break;
      case 1:
        if (keys.length) delete message[rng.pick(keys)];
        break;
      case 2:
        setOwn(message, rng.pick(FIELDS), randomValue(rng, 0));
        break;
      case 3:
        message.a = rng.chance(0.6) ? rng.pick(ACTIONS) : randomValue(rng, 1);
        break;
      case 4:
        setOwn(message, rng.pick(['v', 'seq', 'pv', 'id', 'ts', 'protocol']), rng.pick(EXTREME_NUMBERS));
        break;
      case 5:
        setOwn(message, rng.pick(['c', 'd', 'ch', 'id', 'src']), randomName(rng, ctx, rng.chance(0.5) ? 'c' : 'd'));
        break;
      case 6:
        setOwn(
          message,
          'b',
          rng.pick<unknown>([
            null,
            5,
            'x',
            [1, null],
            { __x: -1 },
            [['a']],
            { [rng.pick(DANGEROUS)]: 1 },
            JSON.parse('{"__proto__":1}'),
            Array(50).fill('d'),
          ]),
        );
        break;
      default:
        setOwn(
          message,
          rng.pick(keys.length ? keys : FIELDS),
          rng.chance(0.5)
            ? rng.pick(INVALID_OPS)
            : JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}'),
        );
    }
  }
}

/**
 * Makes sure `message` cannot change a pre-existing document: an op message aimed at one
 * gets an op json1 refuses, a delete gets `del` other than `true`. Creates are safe (the
 * document exists). Returns true when it changed something.
 */
export function guardExisting(message: Record<string, unknown>, ctx: FrameContext): boolean {
  if (message.a !== 'op') return false;
  if (!ctx.existing.some(({ c, d }) => message.c === c && message.d === d)) return false;
  if ('op' in message) {
    if (validateJson1Op(message.op, ctx.limits) === null) {
      message.op = INVALID_OPS[0];
      return true;
    }
    return false;
  }
  if (!message.create && message.del === true) {
    message.del = 'true';
    return true;
  }
  return false;
}

/** Turns a message into frame text, re-checking the guard on what the server will parse. */
function messageText(message: Record<string, unknown>, ctx: FrameContext): string {
  const parsed = JSON.parse(JSON.stringify(message)) as Record<string, unknown>;
  guardExisting(parsed, ctx);
  return JSON.stringify(parsed);
}

/** A placeholder the deep-nesting family swaps for nested brackets after the guard ran. */
const DEEP = '__fuzz_deep__';

export function generateFrame(rng: Rng, ctx: FrameContext): FuzzFrame {
  const roll = rng.int(100);
  if (roll < 8) {
    // Random bytes: binary over either transport, or (ws, rarely) a text frame of invalid UTF-8.
    const bytes = Buffer.alloc(rng.int(64));
    for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(256);
    if (ctx.transport === 'ws' && rng.chance(0.1))
      return {
        kind: 'invalid-utf8',
        mode: 'bad-utf8',
        payload: Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]),
      };
    return { kind: 'random-bytes', mode: 'binary', payload: bytes };
  }
  if (roll < 18) return { kind: 'random-text', mode: 'text', payload: randomString(rng, 120) };
  if (roll < 24) {
    const value = rng.pick<unknown>([
      rng.int(1e6),
      -1,
      1e308,
      'op',
      '',
      null,
      true,
      false,
      [],
      [1, 2],
      [{ a: 'op' }],
      rng.pick(EXTREME_NUMBERS),
    ]);
    return { kind: 'json-non-object', mode: 'text', payload: JSON.stringify(value) };
  }
  if (roll < 28 && ctx.transport === 'socket.io') {
    if (rng.chance(0.5)) return { kind: 'socketio-non-string', mode: 'value', payload: randomValue(rng, 0) };
    return {
      kind: 'socketio-args',
      mode: 'args',
      payload: [randomValue(rng, 0), messageText(template(rng, ctx), ctx), randomValue(rng, 0)],
    };
  }
  if (roll < 36) {
    const text = messageText(template(rng, ctx), ctx);
    return { kind: 'truncated', mode: 'text', payload: text.slice(0, rng.int(text.length)) };
  }
  if (roll < 40) {
    // A valid message with one character flipped: usually invalid JSON, sometimes a new value.
    const text = messageText(template(rng, ctx), ctx);
    const at = rng.int(text.length);
    const flipped = text.slice(0, at) + rng.pick([...PRINTABLE, ...EXOTIC]) + text.slice(at + 1);
    let payload = flipped;
    try {
      const parsed: unknown = JSON.parse(flipped);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        payload = messageText(parsed as Record<string, unknown>, ctx);
    } catch {
      // Not JSON any more: sent as is.
    }
    return { kind: 'flipped-char', mode: 'text', payload };
  }
  if (roll < 48) {
    // Raw `__proto__` / `constructor` keys where ShareDB copies or walks objects.
    const message = template(rng, ctx);
    let text = messageText(message, ctx);
    const pollution = '"__proto__":{"polluted":"yes","a":"op"},"constructor":{"prototype":{"polluted":"yes"}}';
    text = rng.chance(0.5) ? `{${pollution},${text.slice(1)}` : text.replace(/\{(?=[^{]*$)/, `{${pollution},`);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return { kind: 'proto-keys', mode: 'text', payload: text }; // spliced into `{}`: not JSON, sent as is
    }
    return { kind: 'proto-keys', mode: 'text', payload: guardExisting(parsed, ctx) ? JSON.stringify(parsed) : text };
  }
  if (roll < 56) {
    // Nesting: mostly shallow, some close to the frame limit, a few past the stack's depth.
    const band = rng.next();
    const depth = band < 0.6 ? rng.range(1, 100) : band < 0.9 ? rng.range(100, 3000) : rng.range(5000, 30000);
    const message = template(rng, ctx);
    setOwn(message, rng.pick(['op', 'p', 'q', 'b', 'x', 'create', 'data', 'v', 'id']), DEEP);
    const text = messageText(message, ctx).replace(`"${DEEP}"`, deepArrayText(depth));
    return { kind: depth >= 5000 ? 'nested-deep' : 'nested', mode: 'text', payload: text };
  }
  if (roll < 60) {
    // Around MAX_FRAME_BYTES (set by the test through the limits' frame budget).
    return { kind: 'oversize', mode: 'text', payload: `{"a":"pp","pad":"${'x'.repeat(rng.range(1, 4) * 40_000)}"}` };
  }
  const message = template(rng, ctx);
  mutate(rng, ctx, message);
  return { kind: 'mutated', mode: 'text', payload: messageText(message, ctx) };
}

/** Short printable form of a frame for reports. */
export function describeFrame(frame: FuzzFrame, max = 240): string {
  let body: string;
  if (Buffer.isBuffer(frame.payload)) body = `<${frame.payload.length} bytes ${frame.payload.toString('hex').slice(0, 48)}>`;
  else if (typeof frame.payload === 'string')
    body = JSON.stringify(frame.payload.length > max ? `${frame.payload.slice(0, max)}…(${frame.payload.length} chars)` : frame.payload);
  else {
    try {
      body = JSON.stringify(frame.payload) ?? String(frame.payload);
    } catch {
      body = String(frame.payload);
    }
    if (body.length > max) body = `${body.slice(0, max)}…`;
  }
  return `[${frame.kind}/${frame.mode}] ${body}`;
}
