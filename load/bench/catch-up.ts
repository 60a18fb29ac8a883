/**
 * W5, reconnect catch-up: a reader goes offline, a writer commits N ops one at a time, the
 * reader reconnects; measured from goOnline() until the reader's document is at the
 * writer's version (reconnect + handshake + resubscribe + N ops applied). Repeated, with the
 * median and the worst reported. Clients run in the benchmark process; the server in its own.
 */
import { performance } from 'node:perf_hooks';
import type { ConnectFn, LoadConnection, LoadDocHandle } from '../adapter-types.js';
import type { LoadAuth } from '../options.js';
import { createRng, hashSeed } from '../rng.js';
import { tokenGetter } from '../tokens.js';
import { ClientWorkload, INITIAL_DOC } from '../workload.js';

export interface CatchUpResult {
  missedOps: number;
  samplesMs: number[];
  medianMs: number;
  maxMs: number;
  converged: boolean;
}

function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = performance.now() + timeoutMs;
    const poll = () => {
      if (check()) return resolve();
      if (performance.now() > deadline) return reject(new Error(`W5: timed out waiting for ${what}`));
      setTimeout(poll, 1);
    };
    poll();
  });
}

async function writeOps(doc: LoadDocHandle, gen: ClientWorkload, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const action = gen.next(doc.data);
    if (!action || action.kind === 'presence') {
      i--;
      continue;
    }
    // One at a time: each op its own commit, as a client typing would send them.
    await doc.submit(action.op);
  }
}

export async function runCatchUp(
  connect: ConnectFn,
  url: string,
  missedOps: number,
  repetitions: number,
  auth: LoadAuth | null = null,
): Promise<CatchUpResult> {
  const connections: LoadConnection[] = [];
  try {
    const writer = await connect({ url, getToken: tokenGetter(auth, 'load-w5-writer') });
    connections.push(writer);
    const reader = await connect({ url, getToken: tokenGetter(auth, 'load-w5-reader') });
    connections.push(reader);
    await Promise.all([writer.whenConnected(20_000), reader.whenConnected(20_000)]);
    const docId = `w5-${Date.now().toString(36)}`;
    const w = writer.doc('bench', docId);
    await w.open(INITIAL_DOC);
    const r = reader.doc('bench', docId);
    await r.open();
    const gen = new ClientWorkload(0, { text: 85, struct: 15, presence: 0 }, createRng(hashSeed(42, 'w5')));
    // Warm both paths (JIT, statements) before timing.
    await writeOps(w, gen, 50);
    await waitUntil(() => r.version === w.version, 20_000, 'warm-up catch-up');

    const samplesMs: number[] = [];
    for (let rep = 0; rep < repetitions; rep++) {
      reader.goOffline();
      await waitUntil(() => !reader.online, 10_000, 'reader offline');
      await writeOps(w, gen, missedOps);
      const target = w.version!;
      const start = performance.now();
      reader.goOnline();
      await waitUntil(() => r.version !== null && r.version >= target, 60_000, `reader at v${target}`);
      samplesMs.push(performance.now() - start);
    }
    const converged = JSON.stringify(r.data) === JSON.stringify(w.data) && r.version === w.version;
    const sorted = [...samplesMs].sort((a, b) => a - b);
    return {
      missedOps,
      samplesMs: samplesMs.map((v) => Math.round(v * 10) / 10),
      medianMs: sorted[Math.floor(sorted.length / 2)] ?? 0,
      maxMs: sorted[sorted.length - 1] ?? 0,
      converged,
    };
  } finally {
    for (const c of connections) c.close();
  }
}
