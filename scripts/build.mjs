// Bundles the server (the `tandem` command and the embedding API), the load tool and, when
// present, the browser demo with esbuild.
// `--if-needed` skips the work when every output is newer than every source file.
import { build } from 'esbuild';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const SOURCE_DIRS = ['server', 'client', 'ot-types', 'demo', 'load'];

function newestSource(dir) {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    // A workspace's own build output and installs are not sources.
    if (entry.isDirectory() && (entry.name === 'dist' || entry.name === 'node_modules')) continue;
    const path = join(dir, entry.name);
    const mtime = entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs;
    if (mtime > newest) newest = mtime;
  }
  return newest;
}

const targets = [
  {
    outfile: join(root, 'dist/tandem.js'),
    options: {
      entryPoints: [join(root, 'server/main.ts')],
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: true,
    },
  },
  // `import { startServer } from '@tandem/server'`: the embedding API (declarations: tsconfig.server-types.json).
  {
    outfile: join(root, 'dist/server.js'),
    options: {
      entryPoints: [join(root, 'server/index.ts')],
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: true,
    },
  },
  // `tandem load`: the load tool and its load-generator child process (load/worker-pool.ts
  // forks dist/load-worker.js when it runs from the bundle).
  ...[
    ['load/cli.ts', 'dist/tandem-load.js'],
    ['load/worker.ts', 'dist/load-worker.js'],
  ].map(([entry, out]) => ({
    outfile: join(root, out),
    options: { entryPoints: [join(root, entry)], platform: 'node', format: 'esm', target: 'node20', packages: 'external', sourcemap: true },
  })),
  ...(existsSync(join(root, 'demo/build-targets.mjs')) ? (await import(join(root, 'demo/build-targets.mjs'))).default(root) : []),
];

const ifNeeded = process.argv.includes('--if-needed');
const newest = Math.max(...SOURCE_DIRS.map((d) => newestSource(join(root, d))));
for (const { outfile, options } of targets) {
  if (ifNeeded && existsSync(outfile) && statSync(outfile).mtimeMs >= newest) continue;
  await build({ ...options, outfile, bundle: true, logLevel: 'warning' });
  console.log(`built ${outfile.slice(root.length)}`);
}
