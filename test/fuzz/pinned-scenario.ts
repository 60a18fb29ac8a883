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
 * comes back. Returns a problem description, or null when everyone converged and exactly
 * the ops that could not be rebased were reported (TANDEM_TRANSFORM_FAILED).
 *
 * Known limitation, on purpose not replayed here: a stock ShareDB client (or a raw
 * `connectSocket` connection) trusts json1's TP1 when it rebases its pending ops onto a
 * remote op, so on these pairs it silently diverges from the server (the TP1 case) or gets
 * a Connection 'error' and stays on stale data (the throwing case). Only the SDK's DocHandle
 * checks and repairs the rebase (client/doc-sync.ts). See the README.
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
  // The server committed transform(a, b, 'left') in both cases: nothing of `a` was lost.
  if (snapshot.v !== 3) problems.push(`expected the server at v3 (create, b, a'), got v${snapshot.v}`);
  // Only the follow-up op, which cannot be rebased when json1 throws, is rolled back.
  const expected = pinned.followUp ? [{ code: 'TANDEM_TRANSFORM_FAILED', op: pinned.followUp }] : [];
  if (!isDeepStrictEqual(rejected, expected))
    problems.push(`X reported rejections ${JSON.stringify(rejected)}, expected ${JSON.stringify(expected)}`);
  // The repaired data reached X's listeners as a reset (a change without an op).
  if (resets.x === 0) problems.push('X never signalled a reset after its data was rebuilt');
  return problems.length === 0 ? null : problems.join('\n  ');
}
