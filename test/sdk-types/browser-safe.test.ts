import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ENTRY = fileURLToPath(new URL('../../client/index.ts', import.meta.url));

describe('sdk: the browser entry stays browser-safe', () => {
  it('bundles for the browser without Node built-ins or the Node outbox', async function () {
    this.timeout(30_000);
    // ShareDB's own client needs `events` and `util`; bundlers map them to small shims
    // (demo/shims). Nothing else of Node may be reached from client/index.ts.
    const allowed = new Set(['events', 'util']);
    const nodeOnly = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'libsql']);
    const result = await build({
      entryPoints: [ENTRY],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'esm',
      metafile: true,
      logLevel: 'silent',
      external: [...allowed],
      plugins: [
        {
          name: 'refuse-node',
          setup(b) {
            b.onResolve({ filter: /.*/ }, (args) =>
              nodeOnly.has(args.path) && !allowed.has(args.path)
                ? { errors: [{ text: `${args.importer} imports Node-only "${args.path}"` }] }
                : undefined,
            );
          },
        },
      ],
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((p) => p.endsWith('client/doc-handle.ts')));
    assert.ok(!inputs.some((p) => p.includes('sqlite-store')), 'the SQLite outbox is not in the browser bundle');
  });
});
