import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ENTRY = fileURLToPath(new URL('../../client/index.ts', import.meta.url));

describe('sdk: the browser entry stays browser-safe', () => {
  it('bundles for the browser without Node built-ins or the Node outbox', async function () {
    this.timeout(30_000);
    // ShareDB's own client needs `events` (the npm package, a dependency of @tandem/client)
    // and tries `util` inside a try/catch before the `inherits` package: bundlers need no
    // alias for either. Nothing else of Node may be reached from client/index.ts.
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
    assert.ok(
      inputs.some((p) => p.includes('node_modules/events/')),
      "the events package stands in for Node's",
    );
    assert.ok(
      inputs.some((p) => p.includes('node_modules/inherits/')),
      'inherits stands in for util.inherits',
    );
    assert.deepEqual(result.warnings, []);
  });
});
