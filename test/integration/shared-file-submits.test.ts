/**
 * Two instances on one SQLite file, their ops fanned out by one pub/sub: a submit reads its
 * snapshot from the instance's cache without checking the file for other writers
 * (VersionHintedStore in server/storage/store-db.ts). These are the two ways that cache can be
 * behind, end to end through TandemBackend: a client that learnt of newer versions from the
 * other instance, and one that did not.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ShareDB from 'sharedb';
import { createBackend, type TandemBackend } from '../../server/backend.js';
import { createLogger } from '../../server/ops/logger.js';
import { createSqliteDb } from '../../server/storage/sqlite.js';
import { DEFAULT_OP_LIMITS, ops } from '../../ot-types/index.js';
import { create, fetchDoc, submit, subscribe, waitForVersion } from '../helpers/clients.js';

describe('two instances on one SQLite file: submits built on versions the other instance committed', function () {
  let dir: string;
  const backends: TandemBackend[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-shared-file-'));
  });
  afterEach(async () => {
    for (const b of backends.splice(0)) await b.closeAsync();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function pair(): { a: TandemBackend; b: TandemBackend } {
    const file = path.join(dir, 'tandem.db');
    // Exported by sharedb, missing from @types/sharedb.
    const pubsub = new (ShareDB as unknown as { MemoryPubSub: new () => ShareDB.PubSub }).MemoryPubSub();
    const logger = createLogger('silent');
    const instance = () => createBackend({ db: createSqliteDb({ path: file }), pubsub, limits: DEFAULT_OP_LIMITS, logger });
    const a = instance();
    const b = instance();
    backends.push(a, b);
    return { a, b };
  }

  it('commits an op from a client that saw the other instance move the document, though this instance never read it since', async () => {
    const { a, b } = pair();
    const writer = a.connect().get('notes', 'n1');
    await subscribe(writer);
    await create(writer, { items: [] });
    const reader = b.connect().get('notes', 'n1');
    await subscribe(reader); // B caches the document at version 1
    for (const item of ['x', 'y', 'z']) await submit(writer, ops.insert(['items', 0], item));
    // The ops reach B's client through pub/sub; B's store has not read the document since.
    await waitForVersion([reader], 4);
    await submit(reader, ops.insert(['items', 0], 'from-b'));
    assert.equal(reader.version, 5);
    assert.equal(b.stats.rejected, 0);
    await waitForVersion([writer], 5);
    assert.deepEqual(writer.data, { items: ['from-b', 'z', 'y', 'x'] });
  });

  it('commits an op built on the version this instance cached, after the other instance moved past it, by one retry', async () => {
    const { a, b } = pair();
    const writer = a.connect().get('notes', 'n2');
    await create(writer, { items: [] });
    const late = b.connect().get('notes', 'n2');
    await fetchDoc(late); // B caches version 1; its client does not subscribe
    for (const item of ['x', 'y']) await submit(writer, ops.insert(['items', 0], item));
    await submit(late, ops.insert(['from'], 'b'));
    // B built on its cached version 1, lost the commit to A's ops, and retried on the head.
    assert.equal(b.stats.commitRetries, 1);
    assert.equal(b.stats.rejected, 0);
    await fetchDoc(writer);
    assert.equal(writer.version, 4);
    assert.deepEqual(writer.data, { items: ['y', 'x'], from: 'b' });
  });
});
