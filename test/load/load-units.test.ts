import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { jwtVerify } from 'jose';
import { tandemJson1 } from '../../ot-types/index.js';
import { optionsFromFlags, reportedCommand } from '../../load/command.js';
import { divergence } from '../../load/convergence.js';
import {
  OptionError,
  isLoopbackUrl,
  parseClaims,
  parseDuration,
  parseMix,
  parseRange,
  reportedOptions,
  validateOptions,
  type LoadOptions,
} from '../../load/options.js';
import { planWorkers } from '../../load/plan.js';
import { createProgress, phaseClock } from '../../load/progress.js';
import type { TimelinePoint } from '../../load/result.js';
import { createRng, hashSeed } from '../../load/rng.js';
import { SeenLedger } from '../../load/seen-ledger.js';
import { Timeline } from '../../load/timeline.js';
import { LOAD_TOKEN_TTL_SECONDS, clientSub, tokenGetter } from '../../load/tokens.js';
import { ClientWorkload, INITIAL_DOC, MAX_ITEMS, MAX_TEXT, isLoadDoc } from '../../load/workload.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences are what the progress tests parse
const ANSI_ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g;

const flags = {
  url: ['http://127.0.0.1:8080'],
  transport: 'socketio' as const,
  clients: '10',
  mix: 'text=80,struct=15,presence=5',
  rate: '2',
  duration: '20s',
  warmup: '3s',
  ramp: '2s',
  chaos: '0',
  chaosOffline: '200-2000',
  seed: '1',
  collection: 'load',
  drainTimeout: '30s',
  connectTimeout: '20s',
  allowRemote: false,
  out: 'load-results',
  progress: 'none' as const,
};

describe('load tool: options, plan and workload (pure parts)', () => {
  it('parses durations, mixes and ranges', () => {
    assert.equal(parseDuration('20s'), 20_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('3'), 3_000);
    assert.throws(() => parseDuration('soon'), OptionError);
    assert.deepEqual(parseMix('text=3,presence=1'), { text: 3, struct: 0, presence: 1 });
    assert.throws(() => parseMix('typing=1'), OptionError);
    assert.throws(() => parseMix('text=0'), OptionError);
    assert.deepEqual(parseRange('100-2000'), [100, 2000]);
    assert.deepEqual(parseRange('1s-2s'), [1000, 2000]);
  });

  it('refuses non-loopback targets unless --allow-remote', () => {
    assert.ok(isLoopbackUrl('http://127.0.0.1:8080'));
    assert.ok(isLoopbackUrl('http://localhost:1'));
    assert.ok(isLoopbackUrl('ws://[::1]:9'));
    assert.ok(!isLoopbackUrl('http://10.0.0.1:8080'));
    assert.ok(!isLoopbackUrl('http://example.com'));
    const remote = optionsFromFlags({ ...flags, url: ['http://example.com:8080'] });
    assert.throws(() => validateOptions(remote), /--allow-remote/);
    assert.doesNotThrow(() => validateOptions({ ...remote, allowRemote: true }));
  });

  it('derives docs from --clients-per-doc and bounds the run', () => {
    const o = optionsFromFlags({ ...flags, clients: '100', clientsPerDoc: '4' });
    assert.equal(o.docs, 25);
    assert.throws(() => optionsFromFlags({ ...flags, clients: '10', docs: '2', clientsPerDoc: '4' }), OptionError);
    assert.throws(() => validateOptions({ ...o, clients: 1_000_000 }), OptionError);
    assert.throws(() => validateOptions({ ...o, docs: 101 }), OptionError);
  });

  it('takes --jwt-secret / --jwt-claims into per-client tokens, and keeps the secret out of reports', async () => {
    const secret = 'load-test-secret-0123456789abcdef!';
    assert.equal(optionsFromFlags(flags).auth, null, 'no secret: no tokens');
    const o = validateOptions(optionsFromFlags({ ...flags, jwtSecret: secret, jwtClaims: '{"role":"editor","tenant":"acme","level":2}' }));
    assert.deepEqual(o.auth, { secret, claims: { role: 'editor', tenant: 'acme', level: 2 } });
    assert.deepEqual(optionsFromFlags({ ...flags, jwtSecret: secret }).auth, { secret, claims: {} });
    assert.throws(() => optionsFromFlags({ ...flags, jwtClaims: '{"role":"editor"}' }), /--jwt-claims needs --jwt-secret/);
    assert.throws(() => validateOptions(optionsFromFlags({ ...flags, jwtSecret: 'short' })), /at least 32 bytes/);
    for (const bad of ['role=editor', '[1]', 'null', '"x"']) assert.throws(() => parseClaims(bad), /JSON object/, bad);
    assert.throws(() => parseClaims('{"sub":"x"}'), /set by the load tool/);
    assert.deepEqual(parseClaims('{"tags":["a"],"n":1}'), { tags: ['a'], n: 1 });

    const reported = reportedOptions(o);
    assert.deepEqual(reported.auth, { claims: { role: 'editor', tenant: 'acme', level: 2 } });
    assert.ok(!JSON.stringify(reported).includes(secret), 'no secret in the reported options');
    assert.equal(reportedCommand(['load/cli.ts', '--jwt-secret', secret, '-c', '5']), 'load/cli.ts --jwt-secret *** -c 5');
    assert.equal(reportedCommand(['load/cli.ts', `--jwt-secret=${secret}`]), 'load/cli.ts --jwt-secret=***');

    assert.equal(tokenGetter(null, 'x'), undefined);
    const token = await tokenGetter(o.auth, clientSub(3))!();
    const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ['HS256'] });
    assert.equal(payload.sub, 'load-3');
    assert.equal(payload.role, 'editor');
    assert.equal(payload.exp! - payload.iat!, LOAD_TOKEN_TTL_SECONDS);
  });

  it('keeps all clients of a document in one worker and spreads them over the URLs', () => {
    const o: Pick<LoadOptions, 'clients' | 'docs' | 'workers' | 'urls' | 'docPrefix'> = {
      clients: 103,
      docs: 10,
      workers: 3,
      urls: ['http://127.0.0.1:1', 'http://127.0.0.1:2'],
      docPrefix: 'p',
    };
    const plans = planWorkers(o);
    assert.equal(plans.length, 3);
    const all = plans.flatMap((p) => p.clients);
    assert.deepEqual(
      all.map((c) => c.index),
      Array.from({ length: 103 }, (_, i) => i),
    );
    const workerOfDoc = new Map<string, number>();
    const urlsOfDoc = new Map<string, Set<string>>();
    for (const plan of plans) {
      for (const c of plan.clients) {
        assert.equal(workerOfDoc.get(c.docId) ?? plan.worker, plan.worker, `${c.docId} split across workers`);
        workerOfDoc.set(c.docId, plan.worker);
        urlsOfDoc.set(c.docId, (urlsOfDoc.get(c.docId) ?? new Set()).add(c.url));
        assert.ok(plan.docIds.includes(c.docId));
      }
    }
    assert.equal(workerOfDoc.size, 10);
    for (const urls of urlsOfDoc.values()) assert.equal(urls.size, 2, 'each document has clients on both instances');
    assert.equal(all.filter((c) => c.creator).length, 10);
  });

  it('generates ops that always apply to the local document and keep it bounded', () => {
    for (const seed of [1, 2, 3]) {
      const gen = new ClientWorkload(7, { text: 60, struct: 35, presence: 5 }, createRng(hashSeed(seed, 'unit')));
      let doc: unknown = structuredClone(INITIAL_DOC);
      for (let i = 0; i < 5_000; i++) {
        const action = gen.next(doc);
        assert.ok(action);
        if (action.kind === 'presence') continue;
        doc = tandemJson1.apply(doc as never, action.op);
        assert.ok(isLoadDoc(doc));
      }
      assert.ok(isLoadDoc(doc) && [...doc.text].length <= MAX_TEXT && doc.items.length <= MAX_ITEMS);
    }
  });

  it('compares a copy with the server snapshot without regard to key order (PostgreSQL jsonb reorders keys), but with regard to everything else', () => {
    const copy = { version: 3, hasPending: false, data: { text: 'ab', items: [{ id: 'i0', title: 'item 0', done: false }] } };
    // As jsonb hands it back: shorter keys first.
    assert.equal(divergence(copy, { v: 3, data: { items: [{ id: 'i0', done: false, title: 'item 0' }], text: 'ab' } }), null);
    assert.equal(
      divergence(copy, { v: 3, data: { text: 'ab', items: [{ id: 'i0', title: 'item 0', done: true }] } }),
      'data differs at the same version',
    );
    assert.equal(
      divergence(copy, { v: 3, data: { text: 'ab', items: [{ title: 'item 0', id: 'i0', done: false }, {}] } }),
      'data differs at the same version',
    );
    assert.equal(divergence(copy, { v: 4, data: copy.data }), 'version differs');
    assert.equal(divergence({ ...copy, hasPending: true }, { v: 3, data: copy.data }), 'ops still pending');
  });

  it('pairs submit and arrival in either order, and leaves out catch-up after a reconnect', () => {
    const seen: number[] = [];
    const sink = { delayedByDisconnect: 0, recordSeen: (ms: number) => seen.push(ms) };
    const ledger = new SeenLedger(sink);
    ledger.seen(5, 12, 0); // arrival before the submitter's ack
    ledger.acked(5, 10, false, 13);
    ledger.acked(6, 20, false, 21);
    ledger.seen(6, 23, 0);
    ledger.seen(6, 25, 22); // receiver came back online after the submit: catch-up
    assert.deepEqual(seen, [2, 3]);
    assert.equal(sink.delayedByDisconnect, 1);
    ledger.sweep(1_000_000);
    assert.equal(ledger.size, 0);
  });
});

describe('load tool: exit codes for usage mistakes', function () {
  this.timeout(30_000);
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../load/cli.ts', import.meta.url)), ...args], {
      encoding: 'utf8',
      timeout: 20_000,
    });

  it('an unknown flag or a bad choice exits 2 (bad options), help exits 0', () => {
    const unknown = run(['--bogus']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown option '--bogus'/);
    assert.equal(run(['--transport', 'carrier-pigeon']).status, 2);
    assert.equal(run(['--help']).status, 0);
  });
});

/** A stand-in for stderr that keeps what is written (a terminal when `isTTY`). */
function captureStream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const fake = {
    isTTY,
    columns: 200,
    rows: 40,
    write: (chunk: string) => {
      text += chunk;
      return true;
    },
  };
  // Only write/isTTY/columns are used by createProgress and cli-progress (through readline).
  return { stream: fake as unknown as NodeJS.WriteStream, text: () => text };
}

type Step = { phase: string } | { elapsedMs: number; totalMs: number };

/** What RunHooks.onTick reports over a run with `warmupS` then `measureS` seconds: a tick at
 * the start of each timed phase, then one a second (each a little late, as slots close after
 * their flush). */
function runSteps(warmupS: number, measureS: number): Step[] {
  const steps: Step[] = [{ phase: 'connect' }, { elapsedMs: 1_020, totalMs: 0 }];
  for (const [phase, seconds] of [
    ['warmup', warmupS],
    ['measure', measureS],
  ] as const) {
    steps.push({ phase }, { elapsedMs: 0, totalMs: seconds * 1_000 });
    for (let k = 1; k <= seconds; k++) steps.push({ elapsedMs: k * 1_000 + 40, totalMs: seconds * 1_000 });
  }
  return [...steps, { phase: 'drain' }];
}

function play(progress: ReturnType<typeof createProgress>, point: TimelinePoint, steps: Step[]): void {
  for (const step of steps) {
    if ('phase' in step) progress.phase(step.phase);
    else progress.tick(point, step.elapsedMs, step.totalMs);
  }
}

describe('load tool: live progress, timeline points', () => {
  const point: TimelinePoint = {
    t: 1,
    phase: 'measure',
    workersReporting: 1,
    ackedPerSec: 42,
    submittedPerSec: 42,
    serverCommitsPerSec: 41,
    presencePerSec: 3,
    ackP50: 1,
    ackP99: 2,
    seenP50: 1.5,
    seenP99: 3,
    online: 8,
    pending: 0,
    errors: 0,
    reconnects: 0,
    clientHeapBytes: 1,
    serverRssBytes: null,
    loopDelayP99Ms: 1,
  };

  it('counts the phase in progress: a 15 s measured window after a 3 s warm-up reads x/15 s, never 16 or 18', () => {
    assert.equal(phaseClock(15_040, 15_000), '15/15s');
    assert.equal(phaseClock(15_900, 15_000), '15/15s', 'never past the total');
    assert.equal(phaseClock(0, 15_000), '0/15s');
    assert.equal(phaseClock(7_200, 0), '7s', 'a phase of no fixed length');

    const lines = captureStream(false);
    play(createProgress('lines', lines.stream), point, runSteps(3, 15));
    const printed = lines
      .text()
      .split('\n')
      .filter((l) => /^\[load\] \w+ \d/.test(l))
      .map((l) => l.split(' ').slice(1, 3).join(' '));
    assert.deepEqual(printed, ['warmup 3/3s', 'measure 5/15s', 'measure 10/15s', 'measure 15/15s']);

    // The bar redraws on a timer; stop() draws the frame that stays on the terminal, so each
    // moment of the run is played up to there on a bar of its own.
    const lastFrame = (steps: Step[]): string => {
      const bar = captureStream(true);
      const progress = createProgress('bar', bar.stream);
      play(progress, point, steps);
      progress.stop();
      const frames = bar.text().replace(ANSI_ESCAPES, '\n').split('\n');
      return frames.filter((f) => f.includes('|')).at(-1)!;
    };
    const all = runSteps(3, 15);
    const measuring = all.findIndex((s) => 'phase' in s && s.phase === 'measure');
    assert.match(lastFrame(all.slice(0, 2)), /^connect\s+\|░+\| +1s \| +42 ops\/s/, 'setup: seconds spent, no total');
    assert.match(lastFrame(all.slice(0, measuring)), /^warmup\s+\|█+\| +3\/3s \|/, 'the warm-up has its own count');
    assert.match(lastFrame(all.slice(0, measuring + 2)), /^measure\s+\|░+\| +0\/15s \|/, 'the measured window starts at 0');
    assert.match(lastFrame(all.slice(0, -3)), /^measure\s+\|█{21}░{3}\| +13\/15s \|/);
    assert.match(lastFrame(all), /^drain\s+\|█+\| +15\/15s \|/);
  });

  it('leaves the server loop-delay key out of timeline points when the server does not report it', () => {
    const timeline = new Timeline();
    const meta = { t: 1, seconds: 1, phase: 'measure' as const };
    const bare = timeline.close(0, { ...meta, server: { commitsPerSec: 10, rssBytes: 1, loopDelayP99Ms: null } })!;
    assert.ok(!('serverLoopDelayP99Ms' in bare), 'no key at all, not null');
    assert.ok(!JSON.stringify(timeline.points()).includes('serverLoopDelayP99Ms'));
    const hosted = timeline.close(1, { ...meta, t: 2, server: { commitsPerSec: 10, rssBytes: 1, loopDelayP99Ms: 4.5 } })!;
    assert.equal(hosted.serverLoopDelayP99Ms, 4.5);
  });
});
