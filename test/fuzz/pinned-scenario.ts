/**
 * The pinned scenarios of convergence.test.ts: exact op pairs from pinned-cases.ts (upstream
 * json1 bugs) replayed over real sockets with SDK clients.
 */
import { isDeepStrictEqual } from 'node:util';
import { sdkClient } from '../helpers/sdk-clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { serverSnapshot } from './fuzz-clients.js';
import type { Json } from './gen-op.js';
import type { PinnedCase } from './pinned-cases.js';

const COLLECTION = 'fuzz';

/**
 * Replays a pinned op pair over real sockets with SDK clients: X (offline) has `a` pending
 * (and `followUp` queued behind it, when the case has one) while Y commits `b`; then X
 * comes back. Returns a problem description, or null when everyone converged, every op
 * was committed and none was rolled back.
 *
 * The SDK checks ShareDB's rebase (client/doc-sync.ts) and rebuilds its data when json1's
 * two transform directions disagree; on these pairs tandemJson1's 'right' transform now
 * agrees with the 'left' one (ot-types/symmetric-transform.ts), so no rebuild may be needed:
 * a reset here means the agreement broke. Stock ShareDB clients have no such check and rely
 * on that agreement alone; the convergence fuzz's stock and socket.io clients cover them.
 *
 * `open` is the suite's teardown registry: the server and client closers go there.
 */
export async function runPinnedCase(
  pinned: PinnedCase,
  open: { closers: Array<() => void>; server: TestServer | null },
): Promise<string | null> {
  const server = await startTestServer();
  open.server = server;
  const closers: Array<() => Promise<void>> = [];
  open.closers.push(() => void Promise.all(closers.splice(0).map((close) => close())));
  const x = sdkClient(server.url, closers);
  const y = sdkClient(server.url, closers);
  const problems: string[] = [];
  const rejected: Array<{ code: string; op: unknown }> = [];
  const resets = { x: 0 };
  x.on('error', (err) => problems.push(`X client error: ${err.code}: ${err.message}`));
  y.on('error', (err) => problems.push(`Y client error: ${err.code}: ${err.message}`));
  const docX = x.doc<Json>(COLLECTION, 'pinned', { create: structuredClone(pinned.doc), composeOps: false });
  await docX.ready;
  const docY = y.doc<Json>(COLLECTION, 'pinned');
  await docY.ready;
  for (const [name, doc] of [
    ['X', docX],
    ['Y', docY],
  ] as const)
    doc.on('error', (err) => problems.push(`${name} doc error: ${err.code}: ${err.message}`));
  docY.on('rejected', (r) => problems.push(`Y op rejected: ${r.code}: ${r.message}`));
  docX.on('rejected', (r) => rejected.push({ code: String(r.code), op: r.op }));
  let sawOp = false;
  docX.on('op', () => (sawOp = true));
  docX.on('change', () => {
    if (!sawOp) resets.x++;
    sawOp = false;
  });

  x.goOffline();
  docX.submit(structuredClone(pinned.a));
  if (pinned.followUp) docX.submit(structuredClone(pinned.followUp));
  docY.submit(structuredClone(pinned.b));
  await docY.whenSynced();
  resets.x = 0;
  x.goOnline();

  const settled = await waitFor(() => x.state === 'online' && docX.pendingCount === 0 && docY.pendingCount === 0, {
    timeoutMs: 5_000,
    what: 'X acknowledged',
  }).then(
    () => null,
    (err: Error) => `${err.message} (X at v${docX.version}, pending: ${docX.pendingCount})`,
  );
  if (settled) problems.push(settled);
  const snapshot = await serverSnapshot(server, COLLECTION, 'pinned');
  await waitFor(() => docY.version === snapshot.v, { timeoutMs: 5_000, what: 'Y at the server version' }).catch(() => undefined);
  for (const [name, doc] of [
    ['X', docX],
    ['Y', docY],
  ] as const) {
    if (doc.version !== snapshot.v || !isDeepStrictEqual(doc.data, snapshot.data)) {
      problems.push(
        `${name} at v${doc.version} has ${JSON.stringify(doc.data)}; the server at v${snapshot.v} has ${JSON.stringify(snapshot.data)}`,
      );
    }
  }
  // The server committed transform(a, b, 'left') and the follow-up: nothing of X's was lost.
  const expectedVersion = pinned.followUp ? 4 : 3;
  if (snapshot.v !== expectedVersion)
    problems.push(`expected the server at v${expectedVersion} (create, b, a', follow-up), got v${snapshot.v}`);
  if (rejected.length > 0) problems.push(`X reported rejections ${JSON.stringify(rejected)}, expected none`);
  // Data rebuilt from the snapshot reaches listeners as a change without an op.
  if (resets.x > 0) problems.push("X had to rebuild its data: ShareDB's rebase with tandemJson1 disagreed with the server");
  return problems.length === 0 ? null : problems.join('\n  ');
}
