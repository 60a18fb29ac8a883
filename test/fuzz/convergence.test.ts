/**
 * Seeded convergence fuzz over real sockets.
 *
 * Per seed: one in-process server (default SQLite store), five socket.io clients and one stock
 * ShareDB client over /sharedb, all subscribed to two json1 documents. In rounds, clients
 * submit random ops (test/fuzz/gen-op.ts) without waiting for acks, often aimed at one shared
 * place per round so they conflict; socket.io clients drop offline and come back at random
 * (also while ops are in flight) and keep editing while offline. At the end every client is
 * online and idle, and
 * - every client's document deep-equals the server's snapshot, at the same version;
 * - the server snapshot equals a replay of the stored op log from its create op, and no op
 *   (src/seq) was committed twice;
 * - every submit was acknowledged exactly once, with no error.
 *
 * These clients are stock ShareDB clients (over socket.io or /sharedb). When json1 itself
 * throws while such a client transforms its pending op against an incoming one (an upstream
 * json1 defect, see pinned-cases.ts; the server refuses the same op with the same code,
 * TANDEM_TRANSFORM_FAILED), ShareDB's client cannot recover: the throw escapes its message
 * handler. The run then does what an app would: that client is closed and replaced by a
 * fresh one; its unanswered ops are counted as abandoned (the server committed each at most
 * once, which the op-log check still proves), and everything else is checked as above.
 * More than MAX_UPSTREAM_THROWS per seed fails the run. The SDK repairs these pairs itself
 * (the pinned scenarios below prove it).
 *
 * Pinned scenarios run first: exact op pairs from pinned-cases.ts (upstream json1 bugs)
 * replayed with SDK clients so that ShareDB transforms them in the order that breaks; the
 * SDK must repair the rebase and converge (see runPinnedCase for the stock-client limitation).
 *
 * Env:
 *   FUZZ_SEED=<n>[,<n>…]  run only these seeds (reproduce a failure; no pinned seeds/scenarios)
 *   FUZZ_OPS=<n>          ops submitted per seed (default 4000; 5 seeds → 20,000 ops)
 *
 * Reproducing: a seed fixes every random choice (documents, ops, offline/online toggles,
 * pacing), but ops are generated from each client's current document, which depends on
 * network timing; a seed therefore reproduces the same kind of run, not a byte-identical one.
 * The trace file written on failure (path in the message) holds the exact ops each client
 * submitted, the server's op log and every final document.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { TRANSFORM_FAILED_CODE } from '../../ot-types/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { create, socketClient, stockClient, subscribe } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { initialDoc, OpGenerator, pickFocus, Rng, shuffled, type Json } from './gen-op.js';
import { firstDifference, replayOps, serverOps, serverSnapshot, type FuzzClient } from './fuzz-clients.js';
import { PINNED_CASES } from './pinned-cases.js';
import { runPinnedCase } from './pinned-scenario.js';

/**
 * Regression seeds, run first. Pin a seed that ever failed here, with what it found.
 * None yet: no seed has failed here. The bugs found so far came from the pure TP1 fuzz and
 * are pinned as exact op pairs (pinned-cases.ts), replayed over sockets below.
 */
const PINNED_SEEDS: ReadonlyArray<{ seed: number; found: string }> = [];

/** The CI-sized run: 5 seeds × FUZZ_OPS (default 4000) = 20,000 submitted ops. */
const DEFAULT_SEEDS: readonly number[] = [1, 2, 3, 4, 5];
const OPS_PER_SEED = positiveInt(process.env.FUZZ_OPS, 4000);

const COLLECTION = 'fuzz';
const SOCKET_CLIENTS = 5;
const DOCS_PER_SEED = 2;
/** Stock clients a seed may lose to json1's own transform throws before the run fails. */
const MAX_UPSTREAM_THROWS = 2;

function positiveInt(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got "${value}"`);
  return n;
}

function seedsToRun(): Array<{ seed: number; found?: string }> {
  const only = process.env.FUZZ_SEED;
  if (only !== undefined && only !== '') {
    return only.split(',').map((s) => ({ seed: positiveIntOrZero(s.trim()) }));
  }
  return [...PINNED_SEEDS, ...DEFAULT_SEEDS.map((seed) => ({ seed }))];
}

function positiveIntOrZero(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`FUZZ_SEED: expected integers, got "${s}"`);
  return n;
}

function reproduction(seed: number): string {
  const ops = process.env.FUZZ_OPS ? `FUZZ_OPS=${process.env.FUZZ_OPS} ` : '';
  return `FUZZ_SEED=${seed} ${ops}npx mocha test/fuzz/convergence.test.ts`;
}

interface SubmittedOp {
  round: number;
  doc: string;
  kind: string;
  offline: boolean;
  op: string;
}

interface RunStats {
  submitted: number;
  submittedOffline: number;
  committed: number;
  rounds: number;
  offlineToggles: number;
  /** Sockets the server dropped (disconnect or transport close). */
  serverDrops: number;
  /** Stock clients replaced after json1 threw in their transform (see the file comment). */
  upstreamThrows: number;
  /** Ops those clients had not had answered when they were replaced. */
  abandoned: number;
  kinds: Record<string, number>;
}

/** Everything a run opened, so afterEach can close it whatever happened. */
const open: { closers: Array<() => void>; server: TestServer | null } = { closers: [], server: null };

async function closeAll(): Promise<void> {
  for (const close of open.closers.splice(0)) close();
  const server = open.server;
  open.server = null;
  if (!server) return;
  // The server ends engine.io's waits for a last poll itself (endPendingPollingCloses).
  await server.close();
}

async function runSeed(seed: number, opsTarget: number): Promise<RunStats> {
  const rng = new Rng(seed);
  const server = await startTestServer();
  open.server = server;
  const docIds = Array.from({ length: DOCS_PER_SEED }, (_, i) => `seed${seed}-d${i}`);

  const stats: RunStats = {
    submitted: 0,
    submittedOffline: 0,
    committed: 0,
    rounds: 0,
    offlineToggles: 0,
    serverDrops: 0,
    upstreamThrows: 0,
    abandoned: 0,
    kinds: {},
  };
  const clients: FuzzClient[] = [];
  const errors: string[] = [];
  /** Ops each client submitted and had answered (ack or error), for abandoned-op accounting. */
  const unanswered = new Map<FuzzClient, number>();
  const retired = new Set<FuzzClient>();
  const connect = (slot: number, name: string, gen: OpGenerator): FuzzClient => {
    // The last socket.io client long-polls, so both socket.io transports carry ops and reconnects.
    const polling = slot === SOCKET_CLIENTS - 1;
    const c =
      slot < SOCKET_CLIENTS
        ? (() => {
            const s = socketClient(server.url, polling ? { transports: ['polling'] } : {});
            return { connection: s.connection, close: () => s.close(), shim: s.shim };
          })()
        : { ...stockClient(server.url), shim: null };
    const client: FuzzClient = {
      name,
      connection: c.connection,
      shim: c.shim,
      docs: docIds.map((id) => c.connection.get(COLLECTION, id)),
      gen,
      close: () => c.close(),
    };
    // Every other client (socket1, socket3, stock) never composes pending ops, so the server
    // sees (and transforms) each of their ops on its own; the others let ShareDB compose ops
    // queued behind an in-flight one (or while offline) into one big op.
    for (const d of client.docs) d.preventCompose = slot % 2 === 1;
    client.connection.on('error', (err: { message: string; code?: unknown }) => {
      if (retired.has(client)) return;
      if (err.code === TRANSFORM_FAILED_CODE) replace(slot, client, err.message);
      else errors.push(`${client.name} connection error: ${err.message}`);
    });
    for (const d of client.docs) {
      d.on('error', (err: { message: string }) => {
        if (!retired.has(client)) errors.push(`${client.name} ${d.id} doc error: ${err.message}`);
      });
    }
    unanswered.set(client, 0);
    open.closers.push(client.close);
    return client;
  };
  const subscribing = new Set<Promise<void>>();
  const replace = (slot: number, broken: FuzzClient, message: string): void => {
    retired.add(broken);
    stats.upstreamThrows++;
    stats.abandoned += unanswered.get(broken) ?? 0;
    if (stats.upstreamThrows > MAX_UPSTREAM_THROWS) errors.push(`${broken.name}: json1 threw in a transform once too often: ${message}`);
    // Closed outside ShareDB's message handler, which is still running.
    queueMicrotask(() => broken.close());
    const fresh = connect(slot, `${broken.name}'`, broken.gen);
    clients[slot] = fresh;
    const subscribed = Promise.all(fresh.docs.map(subscribe)).then(
      () => undefined,
      (err: Error) => void errors.push(`${fresh.name} could not subscribe: ${err.message}`),
    );
    subscribing.add(subscribed);
    void subscribed.finally(() => subscribing.delete(subscribed));
  };
  for (let slot = 0; slot <= SOCKET_CLIENTS; slot++) {
    clients.push(
      connect(
        slot,
        slot === SOCKET_CLIENTS ? 'stock' : slot === SOCKET_CLIENTS - 1 ? `socket${slot}-polling` : `socket${slot}`,
        new OpGenerator(rng.fork()),
      ),
    );
  }

  const first = clients[0]!;
  for (let d = 0; d < DOCS_PER_SEED; d++) {
    await subscribe(first.docs[d]!);
    await create(first.docs[d]!, initialDoc(rng));
  }
  await Promise.all(clients.slice(1).flatMap((c) => c.docs.map(subscribe)));

  const trace = new Map<string, SubmittedOp[]>();

  let acked = 0;
  const commits = () => server.backend.stats.commits;

  const fail = (problem: string, extra: Record<string, unknown> = {}): never => {
    const file = join(tmpdir(), `tandem-fuzz-seed${seed}-${Date.now()}.json`);
    try {
      const dump = {
        seed,
        reproduce: reproduction(seed),
        problem,
        stats,
        errors,
        clients: clients.map((c) => ({
          name: c.name,
          offline: c.shim?.offline ?? false,
          docs: c.docs.map((d) => ({ id: d.id, v: d.version, pending: d.hasWritePending(), data: d.data })),
          submitted: trace.get(c.name),
        })),
        ...extra,
      };
      writeFileSync(file, JSON.stringify(dump, null, 1));
    } catch (err) {
      problem += ` (could not write trace: ${(err as Error).message})`;
    }
    throw new Error(`fuzz seed ${seed} failed: ${problem}\n  reproduce: ${reproduction(seed)}\n  trace: ${file}`);
  };

  try {
    while (stats.submitted < opsTarget) {
      stats.rounds++;
      // One shared target per document per round (60% of rounds), taken from one client's view.
      const focus = docIds.map((_, d) => {
        if (!rng.chance(0.6)) return null;
        const view = rng.pick(clients).docs[d]!;
        // A replacement client may still be subscribing.
        return view.type === null ? null : pickFocus(rng, view.data as Json);
      });

      for (const client of shuffled(rng, clients)) {
        for (let d = 0; d < DOCS_PER_SEED; d++) {
          if (retired.has(client)) break;
          if (!rng.chance(0.6)) continue;
          const doc = client.docs[d]!;
          for (let n = rng.range(1, 3); n > 0 && stats.submitted < opsTarget; n--) {
            // A refused op whose removals json1 cannot invert makes ShareDB reload the document
            // (tandemJson1.invert refuses rather than corrupt it): no edits until it is back.
            if (doc.version === null && !doc.hasWritePending()) break;
            if (!isPlainObject(doc.data)) fail(`${client.name} ${doc.id}: data is not an object: ${JSON.stringify(doc.data)}`);
            const generated = client.gen.generate(doc.data as Json, { focus: focus[d] });
            const offline = client.shim?.offline ?? false;
            if (!trace.has(client.name)) trace.set(client.name, []);
            trace
              .get(client.name)!
              .push({ round: stats.rounds, doc: doc.id, kind: generated.kind, offline, op: JSON.stringify(generated.op) });
            const kind = generated.kind.startsWith('compose') ? 'compose' : generated.kind;
            stats.kinds[kind] = (stats.kinds[kind] ?? 0) + 1;
            stats.submitted++;
            if (offline) stats.submittedOffline++;
            unanswered.set(client, unanswered.get(client)! + 1);
            doc.submitOp(generated.op, {}, (err?: { message: string }) => {
              if (retired.has(client)) return;
              unanswered.set(client, unanswered.get(client)! - 1);
              if (err) errors.push(`${client.name} ${doc.id} submit error (${generated.kind}): ${err.message}`);
              else acked++;
            });
            // The client's own model must match what ShareDB applied locally.
            if (!isDeepStrictEqual(doc.data, generated.after)) {
              fail(
                `${client.name} ${doc.id}: local apply of a ${generated.kind} op differs from the generator's model: ${firstDifference(doc.data, generated.after)}`,
              );
            }
          }
        }
      }
      if (errors.length > 0) fail(summarize(errors));

      // Let the network run until some of the pending ops are committed (a random amount),
      // so the next round is generated while other clients' ops are still in flight.
      const busy = clients.filter((c) => !(c.shim?.offline ?? false) && c.docs.some((d) => d.hasWritePending()));
      const wanted = rng.range(0, busy.length);
      if (wanted > 0) {
        const target = commits() + wanted;
        await waitFor(
          () => commits() >= target || clients.every((c) => (c.shim?.offline ?? false) || c.docs.every((d) => !d.hasWritePending())),
          {
            timeoutMs: 20_000,
            intervalMs: 2,
            what: `${wanted} more commits in round ${stats.rounds}`,
          },
        );
      }

      // Cut and restore transports now, while some ops are in flight or their acks are on the way.
      // Now and then the server drops a socket instead: a clean server-side disconnect (the
      // shim must reconnect by itself; socket.io would not) or an abrupt transport close.
      if (rng.chance(0.05)) {
        const sockets = [...server.io.sockets.sockets.values()];
        if (sockets.length > 0) {
          const victim = rng.pick(sockets);
          if (rng.chance(0.5)) victim.disconnect(true);
          else victim.conn.close();
          stats.serverDrops++;
        }
      }
      for (const client of clients) {
        if (!client.shim) continue;
        if (client.shim.offline ? rng.chance(0.3) : rng.chance(0.06)) {
          if (client.shim.offline) client.shim.goOnline();
          else client.shim.goOffline();
          stats.offlineToggles++;
        }
      }
    }

    for (const client of clients) client.shim?.goOnline();
    await Promise.all(subscribing);
    await waitFor(() => clients.every((c) => c.connection.state === 'connected' && c.docs.every((d) => !d.hasWritePending())), {
      timeoutMs: 30_000,
      intervalMs: 5,
      what: 'every client online with nothing pending',
    }).catch((err: Error) => {
      const stuck = clients
        .filter((c) => c.connection.state !== 'connected' || c.docs.some((d) => d.hasWritePending()))
        .map((c) => `${c.name} (${c.connection.state}, pending: ${c.docs.map((d) => d.hasWritePending()).join('/')})`);
      fail(`${err.message}: ${stuck.join(', ')}${errors.length > 0 ? `\n  ${summarize(errors)}` : ''}`);
    });
    if (errors.length > 0) fail(summarize(errors));
    if (acked + stats.abandoned !== stats.submitted) {
      fail(`${stats.submitted} ops submitted but ${acked} acknowledged (${stats.abandoned} abandoned with a replaced client)`);
    }

    for (let d = 0; d < DOCS_PER_SEED; d++) {
      const id = docIds[d]!;
      const snapshot = await serverSnapshot(server, COLLECTION, id);
      stats.committed += snapshot.v - 1;
      await waitFor(() => clients.every((c) => c.docs[d]!.version === snapshot.v), {
        timeoutMs: 15_000,
        intervalMs: 5,
        what: `${id}: every client at server version ${snapshot.v}`,
      }).catch((err: Error) => fail(`${err.message} (versions: ${clients.map((c) => `${c.name} v${c.docs[d]!.version}`).join(', ')})`));
      for (const client of clients) {
        const data = client.docs[d]!.data as Json;
        if (!isDeepStrictEqual(data, snapshot.data)) {
          fail(`${client.name} ${id} diverged from the server snapshot v${snapshot.v} at ${firstDifference(data, snapshot.data)}`, {
            snapshot,
          });
        }
      }
      const log = await serverOps(server, COLLECTION, id);
      const replayed = replayOps(log);
      if ('problem' in replayed) fail(`${id}: ${replayed.problem}`, { snapshot, log });
      else if (replayed.v !== snapshot.v || !isDeepStrictEqual(replayed.data, snapshot.data)) {
        fail(
          `${id}: replaying the op log (v${replayed.v}) differs from the snapshot (v${snapshot.v}) at ${firstDifference(replayed.data, snapshot.data)}`,
          {
            snapshot,
            log,
          },
        );
      }
    }
    return stats;
  } catch (err) {
    if (err instanceof Error && err.message.startsWith(`fuzz seed ${seed} failed`)) throw err;
    return fail(err instanceof Error ? (err.stack ?? err.message) : String(err));
  }
}

describe('fuzz: convergence of socket.io and stock clients over real sockets', function () {
  this.timeout(180_000);
  // `started` is set when the suite starts, not when mocha loads the file with every other.
  const totals = { submitted: 0, committed: 0, offline: 0, toggles: 0, drops: 0, upstream: 0, abandoned: 0, started: 0 };

  before(() => {
    totals.started = Date.now();
  });

  afterEach(closeAll);

  // Every socket, server and timer the suite opened must be gone again: test/helpers/leak-check.ts checks that for every file.
  after(() => {
    const secs = ((Date.now() - totals.started) / 1000).toFixed(1);
    console.log(
      `      fuzz totals: ${totals.submitted} ops submitted (${totals.offline} while offline), ` +
        `${totals.committed} commits after client-side compose, ${totals.toggles} offline/online toggles, ${totals.drops} server-side drops, ` +
        `${totals.upstream} stock clients replaced after json1 threw in their transform (${totals.abandoned} ops abandoned), ${secs} s`,
    );
  });

  if (!process.env.FUZZ_SEED) {
    for (const pinned of PINNED_CASES) {
      it(`pinned scenario: ${pinned.name}`, async () => {
        const problem = await runPinnedCase(pinned, open);
        assert.ok(
          problem === null,
          `pinned scenario "${pinned.name}" did not converge:\n  ${problem}\n` +
            `  reproduce: npx mocha test/fuzz/convergence.test.ts -g 'pinned scenario'\n  found: ${pinned.found}`,
        );
      });
    }
  }

  for (const { seed, found } of seedsToRun()) {
    const label = found ? `pinned seed ${seed} (${found})` : `seed ${seed}`;
    it(`${label}: ${SOCKET_CLIENTS} socket.io + 1 stock client, ${DOCS_PER_SEED} docs, ${OPS_PER_SEED} ops converge`, async () => {
      const stats = await runSeed(seed, OPS_PER_SEED);
      totals.submitted += stats.submitted;
      totals.committed += stats.committed;
      totals.offline += stats.submittedOffline;
      totals.toggles += stats.offlineToggles;
      totals.drops += stats.serverDrops;
      totals.upstream += stats.upstreamThrows;
      totals.abandoned += stats.abandoned;
      assert.ok(stats.submitted >= OPS_PER_SEED);
      assert.ok(stats.submittedOffline > 0, 'some ops were submitted while offline');
    });
  }
});

/** The first few errors (all of them are in the trace file). */
function summarize(errors: string[]): string {
  const shown = errors.slice(0, 5).join('\n  ');
  return errors.length > 5 ? `${shown}\n  … and ${errors.length - 5} more errors` : shown;
}

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
