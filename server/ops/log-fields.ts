/**
 * Field names shared by every log line about a document, a channel or a connection, so an
 * operator can follow one document or one connection across Tandem's and ShareDB's lines.
 */
export interface DocumentLogFields {
  collection?: string;
  /** Document id (or, in a refusal, the query id or presence channel the request named). */
  id?: string | number;
  version?: number;
  /** ShareDB's client id of the connection: the `src` of its ops, `connection.id` in the client. */
  connection?: string;
  /** Presence channel ("<collection>.<id>" for a document's presence). */
  channel?: string;
}

/** Longest string a log line takes from what a client sent (ids and names can be long). */
const MAX_LOGGED_CHARS = 256;

export function clipped(value: string): string {
  return value.length > MAX_LOGGED_CHARS ? `${value.slice(0, MAX_LOGGED_CHARS)}…` : value;
}
