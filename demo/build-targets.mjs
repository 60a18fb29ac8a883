// esbuild targets for the browser side, imported by scripts/build.mjs (and by the browser
// tests): the demo page and its assets under dist/demo/, and the embed bundles
// dist/tandem-embed.js (script tag, global `Tandem`) and dist/tandem-embed.mjs (ES module).
import { join } from 'node:path';

export default (root) => {
  const browser = {
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari16'],
    sourcemap: true,
    // Minified: the embed bundle is what other sites load (~1 MB → ~0.4 MB); maps stay.
    minify: true,
    logLevel: 'warning',
  };
  // HTML pages are copied as they are (no build step in them).
  const page = (name) => ({
    outfile: join(root, 'dist/demo', name),
    options: { entryPoints: [join(root, 'demo', name)], loader: { '.html': 'copy' } },
  });
  return [
    { outfile: join(root, 'dist/demo/demo.js'), options: { ...browser, entryPoints: [join(root, 'demo/demo.ts')], format: 'iife' } },
    page('index.html'),
    page('embed.html'),
    {
      outfile: join(root, 'dist/tandem-embed.js'),
      options: { ...browser, entryPoints: [join(root, 'client/embed.ts')], format: 'iife', globalName: 'Tandem' },
    },
    {
      outfile: join(root, 'dist/tandem-embed.mjs'),
      options: { ...browser, entryPoints: [join(root, 'client/embed.ts')], format: 'esm' },
    },
  ];
};
