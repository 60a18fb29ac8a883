/**
 * The end-of-run check, run by each worker for its own documents once its clients are idle:
 * every client's copy must equal the server's snapshot, fetched through a fresh connection
 * (so it works against any URL, and through Redis fan-out when clients sit on other
 * instances).
 */
import { isDeepStrictEqual } from 'node:util';
import type { LoadConnection, LoadDocHandle } from './adapter-types.js';
import type { ConvergenceReport, Divergence } from './ipc.js';
import type { SimClient } from './sim-client.js';

const MAX_DETAILS = 20;
/** How long clients may take to receive the last ops after the snapshot was read. */
const CATCH_UP_MS = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

type Snapshot = { v: number; data: unknown };

/**
 * Why a client's copy is not the server's snapshot, or null when it is. Objects are compared
 * without regard to key order: JSON objects have none, and PostgreSQL's jsonb keeps keys in
 * an order of its own (shorter keys first), so a document read back from it lists them
 * differently from the copy its writer built.
 */
export function divergence(copy: Pick<LoadDocHandle, 'data' | 'version' | 'hasPending'>, snapshot: Snapshot): string | null {
  if (copy.hasPending) return 'ops still pending';
  if (copy.version !== snapshot.v) return 'version differs';
  if (!isDeepStrictEqual(copy.data, snapshot.data)) return 'data differs at the same version';
  return null;
}

/** Waits (one deadline for all documents) until no client is behind its snapshot. */
async function waitUntilCaughtUp(clientsByDoc: Map<string, SimClient[]>, snapshots: Map<string, Snapshot>): Promise<void> {
  const deadline = Date.now() + CATCH_UP_MS;
  const behind = () =>
    [...clientsByDoc].some(([docId, clients]) => clients.some((c) => c.doc && (c.doc.version ?? -1) < snapshots.get(docId)!.v));
  while (Date.now() < deadline && behind()) await sleep(20);
}

async function fetchAll(checker: LoadConnection, collection: string, docIds: string[], into: Map<string, Snapshot>): Promise<void> {
  const BATCH = 50;
  for (let i = 0; i < docIds.length; i += BATCH) {
    const batch = docIds.slice(i, i + BATCH);
    const snaps = await Promise.all(batch.map((id) => checker.fetchSnapshot(collection, id)));
    batch.forEach((id, k) => into.set(id, snaps[k]!));
  }
}

export async function checkConvergence(
  checker: LoadConnection,
  collection: string,
  clientsByDoc: Map<string, SimClient[]>,
  undrained: number,
): Promise<ConvergenceReport> {
  const snapshots = new Map<string, Snapshot>();
  await fetchAll(checker, collection, [...clientsByDoc.keys()], snapshots);
  await waitUntilCaughtUp(clientsByDoc, snapshots);
  // A client ahead of its snapshot means ops were still arriving: read those again once.
  const ahead = [...clientsByDoc]
    .filter(([docId, clients]) => clients.some((c) => (c.doc?.version ?? -1) > snapshots.get(docId)!.v))
    .map(([docId]) => docId);
  if (ahead.length > 0) {
    await fetchAll(checker, collection, ahead, snapshots);
    await waitUntilCaughtUp(clientsByDoc, snapshots);
  }

  const details: Divergence[] = [];
  let divergent = 0;
  let clientsChecked = 0;
  let totalVersions = 0;
  for (const [docId, clients] of clientsByDoc) {
    const snapshot = snapshots.get(docId)!;
    totalVersions += snapshot.v;
    for (const client of clients) {
      if (!client.doc) continue;
      clientsChecked++;
      const reason = divergence(client.doc, snapshot);
      if (reason === null) continue;
      divergent++;
      if (details.length < MAX_DETAILS) {
        details.push({ docId, client: client.plan.index, clientVersion: client.doc.version, serverVersion: snapshot.v, reason });
      }
    }
  }
  return { docsChecked: clientsByDoc.size, clientsChecked, divergent, details, undrained, totalVersions };
}
