/**
 * The protocol version check at the handshake, for both transports: a client that announces
 * (PROTOCOL_QUERY_PARAM) a version this server does not speak is refused with
 * TANDEM_PROTOCOL_VERSION before anything of it reaches ShareDB, so an outdated SDK learns
 * why it cannot work instead of meeting events and codes it does not understand. A client
 * that announces nothing (stock ShareDB clients, raw socket.io) is accepted as before: it
 * uses only ShareDB's own protocol, which this server keeps.
 */
import { PROTOCOL_QUERY_PARAM, PROTOCOL_VERSION, TandemError, TandemErrorCode } from '../../client/protocol.js';

/** The versions this server accepts. One today; a later server may keep accepting older ones. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = Object.freeze([PROTOCOL_VERSION]);

/** A handshake query value as Node and socket.io hand it over: absent, one value, or repeated. */
export type QueryValue = string | readonly string[] | null | undefined;

/** Longest announced version echoed back in a refusal (the value comes from the client). */
const MAX_ECHOED_CHARS = 32;

function quoted(value: string): string {
  return JSON.stringify(value.length > MAX_ECHOED_CHARS ? `${value.slice(0, MAX_ECHOED_CHARS)}…` : value);
}

/**
 * The refusal for an announced version, or null when the client may connect: nothing
 * announced, or one of `supported`. Anything else — another number, a non-number, the
 * parameter given twice — is refused, with a message naming the versions this server supports.
 */
export function protocolRefusal(announced: QueryValue, supported: readonly number[] = SUPPORTED_PROTOCOL_VERSIONS): TandemError | null {
  if (announced === undefined || announced === null) return null;
  const supports = `this server supports Tandem protocol version ${supported.join(', ')}: use a client SDK that speaks it`;
  if (typeof announced !== 'string') {
    return new TandemError(TandemErrorCode.PROTOCOL_VERSION, `${PROTOCOL_QUERY_PARAM} was given ${announced.length} times; ${supports}`);
  }
  // Digits only: Number('') is 0 and Number(' 1 ') is 1, neither of which the client said.
  if (/^\d{1,9}$/.test(announced) && supported.includes(Number(announced))) return null;
  return new TandemError(
    TandemErrorCode.PROTOCOL_VERSION,
    `the client announced Tandem protocol version ${quoted(announced)}; ${supports}`,
  );
}

/** The version a `/sharedb` upgrade request announces in its URL, as protocolRefusal takes it. */
export function announcedInUrl(url: string | undefined): QueryValue {
  const values = new URL(url ?? '/', 'http://x').searchParams.getAll(PROTOCOL_QUERY_PARAM);
  return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
}
