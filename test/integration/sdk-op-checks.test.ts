import assert from 'node:assert/strict';
import { ops, TandemErrorCode, type TandemError } from '../../client/index.js';
import { sdkClient, serverSnapshot } from '../helpers/sdk-clients.js';
import { useServerPerTest } from '../helpers/server.js';

describe('sdk: ops that do not fit the document are refused before they leave', function () {
  const fixture = useServerPerTest();

  it('a text delete of other text, or an edit at a mistyped path, throws TANDEM_INVALID_OP with the path and changes nothing', async () => {
    const client = sdkClient(fixture.server.url, fixture.closers);
    const doc = client.doc<{ title: string }>('notes', 'checks', { create: { title: 'Hello' } });
    await doc.ready;
    await doc.whenSynced();
    const refused = (op: Parameters<typeof doc.submit>[0]): TandemError => {
      try {
        doc.submit(op);
      } catch (err) {
        return err as TandemError;
      }
      throw new Error('the op was accepted');
    };
    const wrongText = refused(ops.textDelete(['title'], 0, 'XXXXX'));
    assert.equal(wrongText.code, TandemErrorCode.INVALID_OP);
    assert.match(wrongText.message, /at \["title"\]: deletes "XXXXX" at 0 but the text there is "Hello"/);
    const typo = refused(ops.textInsert(['titel'], 0, 'x'));
    assert.equal(typo.code, TandemErrorCode.INVALID_OP);
    assert.match(typo.message, /at \["titel"\]: a text edit needs a string, found nothing/);
    assert.equal(doc.pendingCount, 0);
    assert.deepEqual(doc.data, { title: 'Hello' });

    doc.submit(ops.textDelete(['title'], 0, 'Hell'));
    await doc.whenSynced();
    assert.deepEqual((await serverSnapshot(fixture.server, 'notes', 'checks')).data, { title: 'o' });
  });
});
