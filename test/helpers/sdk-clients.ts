import { connect, type ClientOptions, type TandemClient } from '../../client/index.js';
import { fetchDoc } from './clients.js';
import type { TestServer } from './server.js';

/** An SDK client with fast reconnects, tracked for teardown. */
export function sdkClient(url: string, closers: Array<() => Promise<void>>, options: Partial<ClientOptions> = {}): TandemClient {
  const client = connect({ url, reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, locks: null, saveDelayMs: 5, ...options });
  closers.push(() => client.close());
  return client;
}

/** The server's own view of a document, through an in-process ShareDB connection. */
export async function serverSnapshot(server: TestServer, collection: string, id: string): Promise<{ v: number; data: unknown }> {
  const connection = server.backend.connect();
  const doc = connection.get(collection, id);
  await fetchDoc(doc);
  const snapshot = { v: doc.version ?? -1, data: structuredClone(doc.data) as unknown };
  connection.close();
  return snapshot;
}

/** Counts each item of `list` (for exactly-once checks). */
export function counts<T>(list: readonly T[]): Map<T, number> {
  const map = new Map<T, number>();
  for (const item of list) map.set(item, (map.get(item) ?? 0) + 1);
  return map;
}
