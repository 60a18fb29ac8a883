/**
 * ShareDB logs through one process-wide logger that writes to the console, as positional
 * arguments ('Doc subscription stream error', collection, id, error). Tandem's logs are pino
 * JSON lines whose document fields have fixed names (collection, id, version, connection), so
 * an operator can follow one document or one connection across every line. This routes
 * ShareDB's logger into pino and, for the messages ShareDB actually emits, names their
 * arguments with those fields.
 */
import ShareDB from 'sharedb';
import { clipped, type DocumentLogFields } from './log-fields.js';
import type { Logger } from './logger.js';

interface ShareDbLogFields extends DocumentLogFields {
  query?: string;
  /** What a client sent before its handshake. */
  received?: string;
  err?: string;
  /** The text of a call this module does not know. */
  sharedb?: string;
}

type Argument = 'collection' | 'id' | 'channel' | 'query' | 'connection' | 'op' | 'err' | 'message';

/** ShareDB's server-side log calls (sharedb/lib/agent.js, stream-socket.js), argument by argument. */
const KNOWN_MESSAGES: Readonly<Record<string, readonly Argument[]>> = {
  'Agent closed due to error': ['connection', 'err'],
  'Doc subscription stream error': ['collection', 'id', 'err'],
  'Presence subscription stream error': ['channel', 'err'],
  'Error broadcasting disconnect presence': ['channel', 'err'],
  'Query subscription stream error': ['collection', 'query', 'err'],
  'Error sanitizing op emitted from subscription': ['collection', 'id', 'op', 'err'],
  'Unexpected message received before handshake': ['message'],
  'ShareDB client message stream error': ['err'],
};

function errorText(value: unknown): string {
  if (value instanceof Error) return value.stack ?? value.message;
  if (typeof value === 'string') return value;
  try {
    return clipped(JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}

/** Splits one ShareDB log call into a message and named fields (unknown calls keep their text). */
export function shareDbLogLine(args: readonly unknown[]): { msg: string; fields: ShareDbLogFields } {
  const [first, ...rest] = args;
  const names = typeof first === 'string' ? KNOWN_MESSAGES[first] : undefined;
  if (names === undefined) return { msg: 'sharedb', fields: { sharedb: args.map(errorText).join(' ') } };
  const fields: ShareDbLogFields = {};
  names.forEach((name, i) => {
    const value = rest[i];
    if (value === undefined || value === null) return;
    if (name === 'err') fields.err = errorText(value);
    else if (name === 'op') {
      const v = (value as { v?: unknown }).v;
      if (typeof v === 'number') fields.version = v;
    } else if (name === 'message') fields.received = clipped(errorText(value));
    else if (name === 'query') fields.query = clipped(errorText(value));
    else if (typeof value === 'string') fields[name] = clipped(value);
  });
  return { msg: `sharedb: ${first as string}`, fields };
}

/**
 * Sends everything ShareDB logs through `logger`. ShareDB logs the stack of every request it
 * refuses at `info`; those go to `debug` (the transports log each refusal once, with its code
 * and document fields, under REFUSAL_LOGS_PER_SECOND) and are only formatted when shown.
 */
export function routeShareDbLogs(logger: Logger): void {
  ShareDB.logger.setMethods({
    info: (...args: unknown[]) => {
      if (!logger.isLevelEnabled('debug')) return;
      const { msg, fields } = shareDbLogLine(args);
      logger.debug(fields, msg);
    },
    warn: (...args: unknown[]) => {
      const { msg, fields } = shareDbLogLine(args);
      logger.warn(fields, msg);
    },
    error: (...args: unknown[]) => {
      const { msg, fields } = shareDbLogLine(args);
      logger.error(fields, msg);
    },
  });
}
