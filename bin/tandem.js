#!/usr/bin/env node
// The package bin: runs the bundled server (built by `npm run build` / `npm start`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundle = fileURLToPath(new URL('../dist/tandem.js', import.meta.url));
if (!existsSync(bundle)) {
  console.error('tandem: TANDEM_NOT_BUILT: run `npm run build` (or `npm start`) first');
  process.exit(1);
}
await import(bundle);
