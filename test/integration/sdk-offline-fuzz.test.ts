import assert from 'node:assert/strict';
import { MemoryOutboxStore, ops, type DocHandle, type TandemClient } from '../../client/index.js';
import { counts, sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { useServerPerTest } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

interface FuzzDoc {
  text: string;
  items: string[];
  n: number;
}

/** mulberry32: small, seedable, good enough for choosing actions. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

interface Runner {
  store: MemoryOutboxStore;
  client: TandemClient;
  doc: DocHandle<FuzzDoc>;
}

const STEPS = 150;
// Pinned seeds; a failing seed is printed — add it here to keep it as a regression test.
// FUZZ_SEEDS=n runs seeds 1..n instead (exploration; 40 seeds passed when this was written).
const SEEDS = process.env.FUZZ_SEEDS ? Array.from({ length: Number(process.env.FUZZ_SEEDS) }, (_, i) => i + 1) : [1, 2, 3];

describe('sdk: seeded offline/restart fuzz with outboxes', function () {
  this.timeout(40_000);
  const fixture = useServerPerTest();
  const { closers } = fixture;

  async function open(store: MemoryOutboxStore, startOffline: boolean): Promise<Runner> {
    const client = sdkClient(fixture.server.url, closers, { outbox: store, startOffline });
    const doc = client.doc<FuzzDoc>('notes', 'fuzz', { create: { text: '', items: [], n: 0 } });
    doc.on('rejected', (r) => assert.fail(`unexpected rejection ${r.code}: ${r.message}`));
    doc.on('stalled', (e) => assert.fail(`unexpected stall ${e.code}`));
    await doc.ready;
    return { store, client, doc };
  }

  for (const seed of SEEDS) {
    it(`seed ${seed}: every saved edit reaches the server exactly once and all converge`, async () => {
      const random = rng(seed);
      const runners: Runner[] = [];
      for (let i = 0; i < 3; i++) runners.push(await open(new MemoryOutboxStore(`fuzz-${i}`), false));
      let tokens = 0;
      let adds = 0;
      const log: string[] = [];
      try {
        for (let step = 0; step < STEPS; step++) {
          const index = random(runners.length);
          const r = runners[index]!;
          const roll = random(100);
          const data = r.doc.data!;
          if (roll < 60) {
            const kind = random(4);
            if (kind === 0) {
              r.doc.submit(ops.insert(['items', random(data.items.length + 1)], `t${tokens++}`));
            } else if (kind === 1) {
              r.doc.submit(ops.textInsert(['text'], random(data.text.length + 1), String.fromCharCode(97 + random(26))));
            } else if (kind === 2 && data.text.length > 0) {
              r.doc.submit(ops.textDelete(['text'], random(data.text.length), 1));
            } else {
              r.doc.submit(ops.add(['n'], 1));
              adds++;
            }
            log.push(`${step}: client ${index} edit ${kind}`);
          } else if (roll < 80) {
            if (r.client.heldOffline) r.client.goOnline();
            else r.client.goOffline();
            log.push(`${step}: client ${index} ${r.client.heldOffline ? 'offline' : 'online'}`);
          } else if (roll < 88) {
            // Crash right after the edits are durable: acks still in flight are lost with it.
            await r.doc.whenSaved();
            r.client.goOffline();
            runners[index] = await open(r.store, random(2) === 0);
            log.push(`${step}: client ${index} crash/restart (pending ${runners[index]!.doc.pendingCount})`);
          }
          // Let the network make progress between steps.
          await new Promise((resolve) => setImmediate(resolve));
        }

        for (const r of runners) r.client.goOnline();
        await Promise.all(runners.map((r) => r.doc.whenSynced()));
        const final = await serverSnapshot(fixture.server, 'notes', 'fuzz');
        await waitFor(() => runners.every((r) => r.doc.version === final.v), { timeoutMs: 15_000, what: 'all at the final version' });
        for (const r of runners) assert.deepEqual(r.doc.data, final.data);
        const data = final.data as FuzzDoc;
        const seen = counts(data.items);
        for (let t = 0; t < tokens; t++) assert.equal(seen.get(`t${t}`), 1, `t${t} exactly once`);
        assert.equal(data.items.length, tokens);
        assert.equal(data.n, adds);
      } catch (err) {
        console.log(`      failing seed ${seed}; last steps:\n        ${log.slice(-15).join('\n        ')}`);
        throw err;
      }
    });
  }
});
