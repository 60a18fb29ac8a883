/**
 * Helpers for the convergence fuzz: the clients under test, the server's view of a document
 * (snapshot and op log) and a replay of that log.
 */
import { isDeepStrictEqual } from 'node:util';
import type { JSONOp } from 'ot-json1';
import { tandemJson1 } from '../../ot-types/index.js';
import type { SocketConnection } from '../../client/connect.js';
import { fetchDoc, type Connection, type Doc } from '../helpers/clients.js';
import type { TestServer } from '../helpers/server.js';
import type { Json, OpGenerator } from './gen-op.js';

/** One client under test: a socket.io client (can go offline) or a stock /sharedb client. */
export interface FuzzClient {
  name: string;
  connection: Connection;
  /** The socket.io shim (null for the stock WebSocket client, which stays online). */
  shim: SocketConnection['shim'] | null;
  docs: Doc[];
  gen: OpGenerator;
  close(): void;
}

/** A committed op as the ShareDB DB adapter returns it. */
export interface StoredOp {
  v: number;
  src?: string;
  seq?: number;
  op?: JSONOp;
  create?: { type: string; data: Json };
  del?: boolean;
}

export async function serverSnapshot(server: TestServer, collection: string, id: string): Promise<{ v: number; data: Json }> {
  const doc = server.backend.connect().get(collection, id);
  try {
    await fetchDoc(doc);
    return { v: doc.version ?? -1, data: structuredClone(doc.data) as Json };
  } finally {
    doc.connection.close();
  }
}

export function serverOps(server: TestServer, collection: string, id: string): Promise<StoredOp[]> {
  return new Promise((resolve, reject) =>
    // @types/sharedb types the ops loosely; StoredOp is the shape ShareDB's adapters return.
    server.backend.db.getOps(collection, id, 0, null, {}, (err, ops) => (err ? reject(err) : resolve(ops as unknown as StoredOp[]))),
  );
}

/**
 * Replays the op log from its create op with tandemJson1 and returns the resulting version and
 * data, or a description of what is wrong with the log (gaps, duplicates, a non-applying op).
 */
export function replayOps(log: StoredOp[]): { v: number; data: Json } | { problem: string } {
  if (log.length === 0 || !log[0]!.create) return { problem: 'op log does not start with a create op' };
  let data = structuredClone(log[0]!.create.data);
  const seen = new Set<string>();
  for (let i = 0; i < log.length; i++) {
    const entry = log[i]!;
    if (entry.v !== i) return { problem: `op log entry ${i} has version ${entry.v}` };
    // ShareDB's src/seq is the op's identity: the same op committed twice would show here.
    if (entry.src !== undefined && entry.seq !== undefined) {
      const id = `${entry.src}/${entry.seq}`;
      if (seen.has(id)) return { problem: `op ${id} committed twice (again at v${entry.v})` };
      seen.add(id);
    }
    if (i === 0) continue;
    if (entry.create || entry.del) return { problem: `unexpected ${entry.create ? 'create' : 'delete'} at v${entry.v}` };
    try {
      data = tandemJson1.apply(data, entry.op ?? null) as Json;
    } catch (err) {
      return { problem: `op at v${entry.v} does not apply to the replayed snapshot: ${(err as Error).message}` };
    }
  }
  return { v: log.length, data };
}

/** A short human description of where two values first differ. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | null {
  if (isDeepStrictEqual(a, b)) return null;
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}/${k}`);
      if (d) return d;
    }
  }
  return `${path || '/'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}
