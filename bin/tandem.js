#!/usr/bin/env node
// The package bin: `tandem serve` runs the bundled server, `tandem load` the bundled load
// tool (both built by `npm run build` / `npm start`). Kept apart so the server bundle never
// loads the load tool.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const isLoad = process.argv[2] === 'load';
if (isLoad) process.argv.splice(2, 1);
const bundle = fileURLToPath(new URL(isLoad ? '../dist/tandem-load.js' : '../dist/tandem.js', import.meta.url));
if (!existsSync(bundle)) {
  console.error('tandem: TANDEM_NOT_BUILT: run `npm run build` (or `npm start`) first');
  process.exit(1);
}
await import(bundle);
