/**
 * The snapshot cache (SNAPSHOT_CACHE_MB) with lazy snapshot rows, against the store: three
 * server processes write one SQLite file (two with the cache, one without), each op to a
 * random one, so every cache is often behind what another process committed; processes are
 * SIGKILLed and restarted, leaving snapshot rows behind their heads. At every checkpoint the
 * snapshot each process serves must equal (1) the test's own replay of the ops it sent,
 * (2) the store rebuilt by a fresh reader without a cache (row + ops after it), and (3) the
 * whole op log replayed from version 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import { ops, tandemJson1, type JSONOp } from '../../ot-types/index.js';
import type { QuerySnapshot } from '../../server/storage/mingo-query.js';
import { DEFAULT_SNAPSHOT_CACHE } from '../../server/storage/snapshot-cache.js';
import { createSqliteDb, type SqliteDB, type StoredOp } from '../../server/storage/sqlite.js';
import { call } from '../helpers/callback.js';
import { startServerProcess, type ServerProcess } from '../helpers/process-server.js';
import { Rng } from '../fuzz/rng.js';
import { loadConfig } from '../../server/config.js';
import { waitFor } from '../helpers/wait.js';

interface Card {
  title: string;
  votes: number;
}
interface Board {
  text: string;
  cards: Card[];
  tags: Record<string, string>;
}

const FLUSH_OPS = 7;
const DOCS = ['a', 'b', 'c'];
const ROUNDS = 12;
const OPS_PER_ROUND = 14;
const SEED = Number(process.env.CACHE_SEED ?? 11);

/** A random op that applies to `doc` (text with astral characters, list, object, number edits). */
function randomOp(rng: Rng, doc: Board): JSONOp {
  const words = ['lorem ', 'ipsum ', '😀 ', 'ß', '漢字 ', '🎉🎉', '\n'];
  switch (rng.int(6)) {
    case 0:
    case 1: {
      const points = [...doc.text].length;
      return ops.textInsert(['text'], rng.int(points + 1), words[rng.int(words.length)]!);
    }
    case 2: {
      const points = [...doc.text].length;
      if (points < 2) return ops.textInsert(['text'], 0, 'x');
      const at = rng.int(points - 1);
      return ops.textDelete(['text'], at, 1 + rng.int(Math.min(3, points - at)));
    }
    case 3:
      if (doc.cards.length > 3 && rng.chance(0.4)) return ops.remove(['cards', rng.int(doc.cards.length)]);
      return ops.insert(['cards', rng.int(doc.cards.length + 1)], { title: `card ${rng.int(1000)}`, votes: 0 });
    case 4:
      if (doc.cards.length === 0) return ops.insert(['cards', 0], { title: 'first', votes: 0 });
      return ops.add(['cards', rng.int(doc.cards.length), 'votes'], 1 + rng.int(5));
    default: {
      const key = `k${rng.int(8)}`;
      return key in doc.tags ? ops.replace(['tags', key], `v${rng.int(100)}`) : ops.insert(['tags', key], `v${rng.int(100)}`);
    }
  }
}

describe('snapshot cache: what three processes on one SQLite file serve equals the store rebuilt, across SIGKILLs', function () {
  this.timeout(180_000);
  let dir: string;
  let file: string;
  const processes: Array<ServerProcess | null> = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-snapshot-cache-'));
    file = join(dir, 'tandem.db');
  });
  after(async () => {
    for (const p of processes.splice(0)) await p?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Process i: 0 and 1 cache (rows written every FLUSH_OPS versions), 2 has no cache. */
  const envOf = (i: number) => ({
    DB_URL: `sqlite:${file}`,
    SNAPSHOT_FLUSH_OPS: String(FLUSH_OPS),
    SNAPSHOT_FLUSH_MS: '600000',
    SNAPSHOT_CACHE_MB: i === 2 ? '0' : '64',
  });

  async function request(url: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${url}/api/v1/docs/boards/${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    assert.ok(res.ok, `${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  /** The store as a fresh reader rebuilds it (no cache: snapshot row plus the ops after it). */
  async function rebuilt(reader: SqliteDB, id: string): Promise<QuerySnapshot> {
    return call<QuerySnapshot>((cb) => reader.getSnapshot('boards', id, null, null, cb));
  }

  /** The whole op log from version 0, applied with json1 alone. */
  async function replayedLog(reader: SqliteDB, id: string): Promise<{ v: number; data: unknown }> {
    const log = await call<StoredOp[]>((cb) => reader.getOps('boards', id, 0, null, null, cb));
    let data: unknown;
    log.forEach((op, i) => {
      assert.equal(op.v, i, 'the op log is contiguous');
      if (op.create) data = (op.create as { data: unknown }).data;
      else data = tandemJson1.apply(data as never, op.op as JSONOp);
    });
    return { v: log.length, data };
  }

  it('at every checkpoint, on every process, and after each crash', async () => {
    for (let i = 0; i < 3; i++) processes.push(await startServerProcess(envOf(i)));
    const rng = new Rng(SEED);
    const expected = new Map<string, { v: number; data: Board }>();
    for (const id of DOCS) {
      const data: Board = { text: `board ${id} 😀 start`, cards: [], tags: {} };
      await request(processes[rng.int(3)]!.url, `${id}/ops`, { create: { data } });
      expected.set(id, { v: 1, data });
    }
    const rows = new Database(file, { readonly: true });
    const rowVersion = rows.prepare('SELECT v FROM snapshots WHERE collection = ? AND id = ?');
    let lagging = 0;
    let checkpoints = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        // The documents are written at the same time, each op by a random process.
        await Promise.all(
          DOCS.map(async (id) => {
            for (let k = 0; k < OPS_PER_ROUND; k++) {
              const state = expected.get(id)!;
              const op = randomOp(rng, state.data);
              const target = processes[rng.int(3)]!;
              const answer = await request(target.url, `${id}/ops`, { op, v: state.v });
              state.data = tandemJson1.apply(state.data as never, op) as unknown as Board;
              state.v += 1;
              assert.equal(answer.v, state.v, `${id}: committed at the expected version`);
            }
          }),
        );
        if (round % 4 === 3) {
          // A crash: no shutdown code runs, so whatever that process had not written is only in the op log.
          const victim = rng.int(3);
          await processes[victim]!.kill();
          processes[victim] = null;
          processes[victim] = await startServerProcess(envOf(victim));
        }
        const reader = createSqliteDb({ path: file, snapshotCache: { ...DEFAULT_SNAPSHOT_CACHE, cacheBytes: 0 } });
        try {
          for (const id of DOCS) {
            const want = expected.get(id)!;
            for (const [i, p] of processes.entries()) {
              const served = await request(p!.url, id);
              assert.equal(served.v, want.v, `round ${round}, ${id}, process ${i}: version`);
              assert.deepEqual(served.data, want.data, `round ${round}, ${id}, process ${i}: served snapshot`);
            }
            const fromStore = await rebuilt(reader, id);
            assert.equal(fromStore.v, want.v, `round ${round}, ${id}: rebuilt version`);
            assert.deepEqual(fromStore.data, want.data, `round ${round}, ${id}: rebuilt from row and ops`);
            assert.deepEqual(await replayedLog(reader, id), { v: want.v, data: want.data }, `round ${round}, ${id}: op log`);
            const row = rowVersion.get('boards', id) as { v: number };
            assert.ok(row.v <= want.v);
            if (row.v < want.v) lagging++;
            checkpoints++;
          }
        } finally {
          reader.close();
        }
      }
    } finally {
      rows.close();
    }
    // Otherwise this test would not have exercised the rebuild it claims to check.
    assert.ok(lagging >= checkpoints / 4, `snapshot rows lagged their heads at only ${lagging} of ${checkpoints} checkpoints`);
  });
});

describe('SNAPSHOT_CACHE_MB, SNAPSHOT_FLUSH_OPS, SNAPSHOT_FLUSH_MS', () => {
  it('default to 128 MiB, 1,000 versions and 5 s, take 0 to turn the cache off, and refuse nonsense with TANDEM_BAD_CONFIG', () => {
    const defaults = loadConfig({});
    assert.deepEqual([defaults.snapshotCacheMb, defaults.snapshotFlushOps, defaults.snapshotFlushMs], [128, 1000, 5000]);
    assert.equal(loadConfig({ SNAPSHOT_CACHE_MB: '0' }).snapshotCacheMb, 0);
    for (const env of [{ SNAPSHOT_CACHE_MB: '-1' }, { SNAPSHOT_FLUSH_OPS: '0' }, { SNAPSHOT_FLUSH_MS: 'soon' }]) {
      assert.throws(() => loadConfig(env), { code: 'TANDEM_BAD_CONFIG', message: new RegExp(Object.keys(env)[0]!) });
    }
  });
});

describe('lazy snapshot rows: when a cached document is written whole', function () {
  let dir: string;
  const open: SqliteDB[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-snapshot-rows-'));
  });
  afterEach(() => {
    for (const db of open.splice(0)) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const JSON1 = tandemJson1.uri;
  async function typeInto(db: SqliteDB, id: string, count: number): Promise<void> {
    let snapshot = await call<QuerySnapshot>((cb) => db.getSnapshot('notes', id, null, { metadata: true }, cb));
    if (snapshot.v === 0) {
      const created = { v: 0, create: { type: JSON1, data: { text: '' } }, m: { ts: Date.now() } };
      assert.ok(
        await call<boolean>((cb) => db.commit('notes', id, created, { id, v: 1, type: JSON1, data: { text: '' }, m: {} }, null, cb)),
      );
      snapshot = { id, v: 1, type: JSON1, data: { text: '' }, m: {} };
    }
    for (let i = 0; i < count; i++) {
      const op = ops.textInsert(['text'], 0, 'x');
      const next = { ...snapshot, v: snapshot.v + 1, data: tandemJson1.apply(snapshot.data as never, op) };
      assert.ok(await call<boolean>((cb) => db.commit('notes', id, { v: snapshot.v, op, m: { ts: Date.now() } }, next, null, cb)));
      snapshot = next;
    }
  }

  it('after SNAPSHOT_FLUSH_MS, on eviction past SNAPSHOT_CACHE_MB, and on close', async () => {
    const file = join(dir, 'rows.db');
    const rows = () => {
      const raw = new Database(file, { readonly: true });
      try {
        return Object.fromEntries(
          (raw.prepare("SELECT id, v FROM snapshots WHERE collection = 'notes'").all() as Array<{ id: string; v: number }>).map((r) => [
            r.id,
            r.v,
          ]),
        );
      } finally {
        raw.close();
      }
    };
    // By time: rows lag (a create is written at once), then the timer writes them.
    // A short busy timeout: a write waiting for the lock below blocks the thread that long.
    const timed = createSqliteDb({ path: file, busyTimeoutMs: 20, snapshotCache: { cacheBytes: 1 << 20, flushOps: 1000, flushMs: 50 } });
    open.push(timed);
    await typeInto(timed, 't', 10);
    assert.equal(rows().t, 1);
    await waitFor(() => rows().t === 11, { timeoutMs: 5000, what: 'the timed snapshot write' });
    // A timed write the file refuses (another connection holds the write lock) is counted,
    // and the next one writes the row once the lock is gone.
    await typeInto(timed, 't', 1);
    const raw = new Database(file);
    try {
      raw.exec('BEGIN IMMEDIATE');
      await waitFor(() => timed.snapshotCache.failedWrites > 0, { timeoutMs: 5000, what: 'a failed timed write to be counted' });
      assert.equal(rows().t, 11, 'the row lags while the file is locked');
    } finally {
      raw.exec('ROLLBACK');
      raw.close();
    }
    await waitFor(() => rows().t === 12, { timeoutMs: 5000, what: 'the timed write after the lock' });
    assert.equal(timed.snapshotCache.unwritten, 0);
    timed.close();
    open.pop();
    // By eviction: a second document pushes the first out of a budget that holds one.
    const small = createSqliteDb({ path: file, snapshotCache: { cacheBytes: 40, flushOps: 1000, flushMs: 600_000 } });
    open.push(small);
    await typeInto(small, 'a', 30);
    assert.equal(rows().a, 1, 'a waits while it is cached');
    await typeInto(small, 'b', 30);
    assert.equal(rows().a, 31, 'a was written when b evicted it');
    assert.equal(rows().b, 1);
    // By close: what is still cached is written before the file closes.
    small.close();
    open.pop();
    assert.equal(rows().b, 31);
  });

  it('a cached document behind another process that wrote its row and compacted the ops below it is read from that row', async () => {
    const file = join(dir, 'compacted.db');
    const cache = { cacheBytes: 1 << 20, flushOps: 10, flushMs: 600_000 };
    const a = createSqliteDb({ path: file, snapshotCache: cache });
    const b = createSqliteDb({ path: file, snapshotCache: cache });
    open.push(a, b);
    await typeInto(a, 'doc', 3);
    const cachedByA = await call<QuerySnapshot>((cb) => a.getSnapshot('notes', 'doc', null, null, cb));
    assert.equal(cachedByA.v, 4);
    // b writes on: its row passes every SNAPSHOT_FLUSH_OPS versions, then the ops below the
    // row go, as op-log compaction removes them (never past a written row).
    await typeInto(b, 'doc', 25);
    const raw = new Database(file);
    try {
      const row = raw.prepare("SELECT v FROM snapshots WHERE collection = 'notes' AND id = 'doc'").get() as { v: number };
      assert.ok(row.v > 4, `b wrote its row (v${row.v})`);
      raw.prepare("DELETE FROM ops WHERE collection = 'notes' AND id = 'doc' AND v < ?").run(row.v);
    } finally {
      raw.close();
    }
    // A new event-loop turn: a's next read checks whether another connection committed (data_version).
    await new Promise((resolve) => setImmediate(resolve));
    const [fromA, fromB] = await Promise.all(
      [a, b].map((db) => call<QuerySnapshot>((cb) => db.getSnapshot('notes', 'doc', null, null, cb))),
    );
    assert.equal(fromA.v, 29);
    assert.deepEqual(fromA, fromB);
    assert.equal((fromA.data as { text: string }).text, 'x'.repeat(28));
  });
});
