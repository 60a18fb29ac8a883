import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { jwtVerify } from 'jose';
import { tandemJson1 } from '../../ot-types/index.js';
import { optionsFromFlags, reportedCommand } from '../../load/command.js';
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
import { createRng, hashSeed } from '../../load/rng.js';
import { SeenLedger } from '../../load/seen-ledger.js';
import { LOAD_TOKEN_TTL_SECONDS, clientSub, tokenGetter } from '../../load/tokens.js';
import { ClientWorkload, INITIAL_DOC, MAX_ITEMS, MAX_TEXT, isLoadDoc } from '../../load/workload.js';

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
    assert.deepEqual(all.map((c) => c.index), Array.from({ length: 103 }, (_, i) => i));
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
    spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../load/cli.ts', import.meta.url)), ...args], { encoding: 'utf8', timeout: 20_000 });

  it('an unknown flag or a bad choice exits 2 (bad options), help exits 0', () => {
    const unknown = run(['--bogus']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown option '--bogus'/);
    assert.equal(run(['--transport', 'carrier-pigeon']).status, 2);
    assert.equal(run(['--help']).status, 0);
  });
});
