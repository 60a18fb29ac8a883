/**
 * Who runs where: assigns clients to documents, server URLs and worker processes.
 *
 * All clients of one document live in the same worker process. That lets a worker measure
 * submit→seen-by-others latency with one clock and no cross-process bookkeeping, and lets it
 * check its documents' convergence on its own once its clients are idle. Consecutive clients
 * share a document and take URLs round-robin, so with several URLs the clients of one
 * document sit on different instances and every op crosses the pub/sub (Redis) fan-out.
 */
import type { LoadOptions } from './options.js';

export interface ClientPlan {
  /** Global index, 0-based; seeds the client's PRNG and its ramp-up slot. */
  readonly index: number;
  readonly url: string;
  readonly docId: string;
  /** The first client of each document creates it if missing. */
  readonly creator: boolean;
}

export interface WorkerPlan {
  readonly worker: number;
  readonly clients: readonly ClientPlan[];
  readonly docIds: readonly string[];
}

export function docIdOf(prefix: string, doc: number): string {
  return `${prefix}-${doc}`;
}

/** Document of client `i` when `clients` are spread over `docs` in contiguous groups. */
export function docOfClient(i: number, clients: number, docs: number): number {
  return Math.floor((i * docs) / clients);
}

export function planWorkers(o: Pick<LoadOptions, 'clients' | 'docs' | 'workers' | 'urls' | 'docPrefix'>): WorkerPlan[] {
  const workers = Math.min(o.workers, o.docs);
  const plans: WorkerPlan[] = [];
  let client = 0;
  for (let w = 0; w < workers; w++) {
    const firstDoc = Math.floor((w * o.docs) / workers);
    const endDoc = Math.floor(((w + 1) * o.docs) / workers);
    const clients: ClientPlan[] = [];
    const docIds: string[] = [];
    for (let d = firstDoc; d < endDoc; d++) docIds.push(docIdOf(o.docPrefix, d));
    let lastDoc = -1;
    while (client < o.clients && docOfClient(client, o.clients, o.docs) < endDoc) {
      const doc = docOfClient(client, o.clients, o.docs);
      clients.push({
        index: client,
        url: o.urls[client % o.urls.length]!,
        docId: docIdOf(o.docPrefix, doc),
        creator: doc !== lastDoc,
      });
      lastDoc = doc;
      client++;
    }
    plans.push({ worker: w, clients, docIds });
  }
  return plans;
}
