// Builds one workspace package's dist/ (ESM JavaScript, .d.ts declarations and maps) with
// tsc: `node scripts/build-package.mjs client`. The package's tsconfig.build.json says what
// goes in; dist/ is emptied first so a removed source file leaves no stale module behind.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const name = process.argv[2];
if (!name) {
  console.error('usage: node scripts/build-package.mjs <package folder>');
  process.exit(2);
}
const dir = join(root, name);
rmSync(join(dir, 'dist'), { recursive: true, force: true });
const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.build.json')], { stdio: 'inherit' });
console.log(`built ${name}/dist`);
