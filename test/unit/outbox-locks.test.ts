import assert from 'node:assert/strict';
import { MemoryOutboxStore, ops } from '../../client/index.js';
import { acquireDocLock } from '../../client/offline/doc-lock.js';
import { sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { FakeLockManager } from '../helpers/sdk-fakes.js';
import { useServerPerTest } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

describe('outbox: one owner per document (Web Locks)', () => {
  it('grants a lock to one holder at a time and again after release', async () => {
    const locks = new FakeLockManager();
    const first = await acquireDocLock(locks, 'doc');
    assert.ok(first);
    assert.equal(await acquireDocLock(locks, 'doc'), null);
    assert.ok(await acquireDocLock(locks, 'other'));
    first.release();
    first.release();
    await waitFor(() => !locks.held.has('doc'), { what: 'released' });
    assert.ok(await acquireDocLock(locks, 'doc'));
  });

  it('without a lock manager every caller owns the outbox', async () => {
    assert.ok(await acquireDocLock(null, 'doc'));
    assert.ok(await acquireDocLock(null, 'doc'));
  });

  describe('two tabs on one outbox', () => {
    const fixture = useServerPerTest();
    const { closers } = fixture;

    it('the second tab follows through the server; it takes over once the first closes', async () => {
      const store = new MemoryOutboxStore('user-1');
      const locks = new FakeLockManager();
      const tab1 = sdkClient(fixture.server.url, closers, { outbox: store, locks });
      const tab2 = sdkClient(fixture.server.url, closers, { outbox: store, locks });
      const owner = tab1.doc<{ n: number }>('notes', 'tabs', { create: { n: 0 } });
      await owner.ready;
      const follower = tab2.doc<{ n: number }>('notes', 'tabs');
      await follower.ready;
      assert.equal(owner.durable, true);
      assert.equal(follower.durable, false);

      // Both edit; the follower's edits go through the server, and the owner sees them.
      follower.submit(ops.add(['n'], 2));
      owner.submit(ops.add(['n'], 1));
      await Promise.all([owner.whenSynced(), follower.whenSynced()]);
      await waitFor(() => owner.data?.n === 3 && follower.data?.n === 3, { what: 'both at 3' });
      await owner.whenSaved();
      assert.deepEqual((await store.load({ collection: 'notes', id: 'tabs' }))?.snapshot, { n: 3 });

      await owner.close();
      await follower.close();
      const again = tab2.doc<{ n: number }>('notes', 'tabs');
      await again.ready;
      assert.equal(again.durable, true, 'the lock is free again');
      assert.deepEqual((await serverSnapshot(fixture.server, 'notes', 'tabs')).data, { n: 3 });
    });
  });
});
