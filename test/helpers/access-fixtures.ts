/**
 * Fixtures for the access-control tests (test/integration/auth-access.test.ts): rules files,
 * clients of both transports that present a token, the store's own view of a document
 * (read from the DB adapter, past every middleware), and promise wrappers for the ShareDB
 * client calls those tests refuse or allow.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { Connection, Doc, LocalPresence, Presence, Query, Snapshot } from 'sharedb/lib/client/index.js';
import { Connection as ShareDbConnection } from 'sharedb/lib/client/index.js';
import { SHAREDB_WS_PATH, TOKEN_QUERY_PARAM } from '../../client/protocol.js';
import { registerTandemTypes } from '../../ot-types/index.js';
import type { AccessHook } from '../../server/auth/access.js';
import type { RulesFile } from '../../server/auth/rules.js';
import type { TandemServer } from '../../server/app.js';
import type { ConfigSource } from '../../server/config.js';
import { socketClient } from './clients.js';
import { startTestServer, type TestServer } from './server.js';

export type Transport = 'stock' | 'socket.io';
export const TRANSPORTS: readonly Transport[] = ['stock', 'socket.io'];

let rulesFiles = 0;

/**
 * Mocha hooks for a describe block whose servers use `rules`: the file is written before the
 * block's first test and removed after its last (nothing is written if no test runs).
 * Returns the file's path, for RULES_FILE.
 */
export function useRulesFile(rules: RulesFile): string {
  const path = join(tmpdir(), `tandem-rules-${process.pid}-${++rulesFiles}.json`);
  before(() => writeFileSync(path, JSON.stringify(rules)));
  after(() => rmSync(path, { force: true }));
  return path;
}

/**
 * An in-process server with a programmatic access hook, as an application embedding Tandem
 * starts one: startServer(loadConfig(env), logger, {access}).
 */
export function startServerWithHook(env: ConfigSource, access: AccessHook): Promise<TestServer> {
  return startTestServer(env, { access });
}

export interface Client {
  readonly transport: Transport;
  readonly connection: Connection;
  close(): void;
}

/**
 * A ShareDB client over `transport` presenting `token` (none when null): a stock client on
 * /sharedb with `?token=`, or Tandem's socket.io client with the token in its handshake
 * auth. `sourceKey` (socket.io only) goes in the handshake auth too.
 */
export function connectClient(url: string, transport: Transport, token: string | null, sourceKey?: string): Client {
  if (transport === 'stock') {
    registerTandemTypes();
    const query = token === null ? '' : `?${TOKEN_QUERY_PARAM}=${encodeURIComponent(token)}`;
    const socket = new WebSocket(url.replace(/^http/, 'ws') + SHAREDB_WS_PATH + query);
    // ws's WebSocket is what ShareDB's README passes; its typings differ from the DOM's.
    const connection = new ShareDbConnection(socket as unknown as ConstructorParameters<typeof ShareDbConnection>[0]);
    return { transport, connection, close: () => connection.close() };
  }
  const auth: Record<string, unknown> = {};
  if (token !== null) auth.token = token;
  if (sourceKey !== undefined) auth.sourceKey = sourceKey;
  const client = socketClient(url, { handshakeAuth: async () => auth });
  return { transport, connection: client.connection, close: () => client.close() };
}

/** Resolves once the connection finished its handshake (connection.id is the server's). */
export function connected(connection: Connection, timeoutMs = 10_000): Promise<void> {
  if (connection.state === 'connected') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      connection.off('connected', onConnected);
      reject(new Error(`connection not connected after ${timeoutMs} ms (state ${connection.state})`));
    }, timeoutMs);
    const onConnected = () => {
      clearTimeout(timer);
      resolve();
    };
    connection.once('connected', onConnected);
  });
}

/** The error code of a rejection (ShareDB errors are `{code, message}`, not always Errors). */
export function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

/** Asserts that `promise` rejects with exactly `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: string, what = 'request'): Promise<void> {
  let settled: { ok: true; value: unknown } | { ok: false; err: unknown };
  try {
    settled = { ok: true, value: await promise };
  } catch (err) {
    settled = { ok: false, err };
  }
  assert.ok(!settled.ok, `${what} was allowed; expected ${code}`);
  assert.equal(codeOf(settled.err), code, `${what}: ${String((settled.err as { message?: unknown }).message)}`);
}

export type Message = Record<string, unknown>;

/**
 * Sends a message by hand (as a client that does not play by the rules would) and resolves
 * with the first message from the server that `isReply` accepts. That reply is taken out of
 * the Connection's way, so a refusal of a hand-made request never reaches its docs.
 */
export function rawRequest(
  connection: Connection,
  message: Message,
  isReply: (reply: Message) => boolean,
  timeoutMs = 10_000,
): Promise<Message> {
  return new Promise((resolve, reject) => {
    const onReceive = (request: { data: unknown }) => {
      const data = request.data;
      if (typeof data !== 'object' || data === null || !isReply(data as Message)) return;
      request.data = null;
      clearTimeout(timer);
      connection.off('receive', onReceive);
      resolve(data as Message);
    };
    const timer = setTimeout(() => {
      connection.off('receive', onReceive);
      reject(new Error(`no reply to ${JSON.stringify(message).slice(0, 200)} in ${timeoutMs} ms`));
    }, timeoutMs);
    connection.on('receive', onReceive);
    connection.send(message);
  });
}

/** The `error.code` of a raw reply, or undefined when it succeeded. */
export function replyCode(reply: Message): unknown {
  return codeOf(reply.error);
}

/** Records every message a connection receives (call `stop()` when done). */
export function recordMessages(connection: Connection): { messages: Message[]; stop(): void } {
  const messages: Message[] = [];
  const onReceive = (request: { data: unknown }) => {
    if (typeof request.data === 'object' && request.data !== null) messages.push(structuredClone(request.data as Message));
  };
  connection.on('receive', onReceive);
  return { messages, stop: () => connection.off('receive', onReceive) };
}

/**
 * One round trip (ShareDB's ping/pong): everything the server sent this connection before it
 * answered the ping has been received. Used to check that nothing arrived, without sleeping.
 */
export function roundTrip(connection: Connection, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      connection.off('pong', onPong);
      reject(new Error(`no pong in ${timeoutMs} ms`));
    }, timeoutMs);
    const onPong = () => {
      clearTimeout(timer);
      resolve();
    };
    connection.once('pong', onPong);
    connection.ping();
  });
}

export interface StoredOp {
  src?: string;
  seq?: number;
  v: number;
  op?: unknown;
  create?: unknown;
  del?: boolean;
  m?: Record<string, unknown>;
}

/** What the store holds for a document: snapshot version, type, data and its ops. */
export interface StoredDoc {
  v: number;
  type: string | null;
  data: unknown;
  ops: StoredOp[];
}

/** Reads a document straight from the DB adapter (no middleware, no access rules). */
export async function storedDoc(server: { backend: TandemServer['backend'] }, collection: string, id: string): Promise<StoredDoc> {
  const db = server.backend.db;
  const snapshot = await new Promise<{ v: number; type: string | null; data?: unknown }>((resolve, reject) =>
    db.getSnapshot(collection, id, null, null, (err: unknown, s: { v: number; type: string | null; data?: unknown }) =>
      err ? reject(err) : resolve(s),
    ),
  );
  const ops = await new Promise<StoredOp[]>((resolve, reject) =>
    db.getOps(collection, id, 0, null, { metadata: true }, (err: unknown, list: StoredOp[]) => (err ? reject(err) : resolve(list))),
  );
  return { v: snapshot.v, type: snapshot.type, data: structuredClone(snapshot.data), ops };
}

export function fetchSnapshot(connection: Connection, collection: string, id: string, version: number | null): Promise<Snapshot> {
  return new Promise((resolve, reject) => connection.fetchSnapshot(collection, id, version, (err, s) => (err ? reject(err) : resolve(s))));
}

export function fetchSnapshotByTimestamp(
  connection: Connection,
  collection: string,
  id: string,
  timestamp: number | null,
): Promise<Snapshot> {
  return new Promise((resolve, reject) =>
    connection.fetchSnapshotByTimestamp(collection, id, timestamp, (err, s) => (err ? reject(err) : resolve(s))),
  );
}

/** A fetch query: its result docs and `extra` (counts, distinct values). */
export function queryFetch(connection: Connection, collection: string, query: unknown): Promise<{ docs: Doc[]; extra: unknown }> {
  return new Promise((resolve, reject) => {
    const q: Query = connection.createFetchQuery(collection, query, null, (err, docs) =>
      err ? reject(err) : resolve({ docs, extra: q.extra }),
    );
  });
}

/** A subscribed query once its first results arrived. */
export function querySubscribe(connection: Connection, collection: string, query: unknown): Promise<Query> {
  return new Promise((resolve, reject) => {
    const q: Query = connection.createSubscribeQuery(collection, query, null, (err) => (err ? reject(err) : resolve(q)));
  });
}

export function ids(docs: readonly Doc[]): string[] {
  return docs.map((d) => d.id).sort();
}

export function del(doc: Doc): Promise<void> {
  return new Promise((resolve, reject) => doc.del({}, (err) => (err ? reject(err) : resolve())));
}

export function presenceSubscribe(presence: Presence): Promise<void> {
  return new Promise((resolve, reject) => presence.subscribe((err) => (err ? reject(err) : resolve())));
}

export function presenceSubmit(local: LocalPresence, value: unknown): Promise<void> {
  return new Promise((resolve, reject) => local.submit(value, (err) => (err ? reject(err) : resolve())));
}
