import { existsSync, readFileSync, statSync } from 'node:fs';
import { serveLandingPage } from './landing-page.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Serves the demo page at `/` and the browser bundles esbuild wrote to dist/
 * (`npm run build`; `npm start` builds them when sources changed):
 *
 *   /                    dist/demo/index.html
 *   /demo/<file>         dist/demo/<file>   (demo.js, demo.css, embed.html, source maps)
 *   /embed.html          dist/demo/embed.html (the script-tag example)
 *   /tandem-embed.js     dist/tandem-embed.js (+ .mjs, and their .map)
 *
 * Anything else under those prefixes is a 404; other paths are not ours (returns false).
 */
export type AssetHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

const TOP_LEVEL = new Set(['/tandem-embed.js', '/tandem-embed.js.map', '/tandem-embed.mjs', '/tandem-embed.mjs.map']);

/** The project folder: the nearest parent of this module with a package.json (works from dist/ and from sources). */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

function notFound(res: ServerResponse, message: string): true {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(message);
  return true;
}

/** A handler serving the demo from `distDir` (tests pass their own build folder). */
export function createDemoAssetHandler(distDir: string): AssetHandler {
  const root = resolve(distDir);
  const demoDir = join(root, 'demo');
  return (req, res) => {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return notFound(res, 'bad path');
    }
    let file: string;
    if (path === '/' || path === '/index.html') file = join(demoDir, 'index.html');
    else if (path === '/embed.html') file = join(demoDir, 'embed.html');
    else if (TOP_LEVEL.has(path)) file = join(root, path.slice(1));
    else if (path.startsWith('/demo/')) {
      file = resolve(demoDir, `.${path.slice('/demo'.length)}`);
      // No escaping the folder with ../ or encoded separators.
      if (!file.startsWith(demoDir + sep)) return notFound(res, 'not found');
    } else return false;

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return true;
    }
    if (!existsSync(file) || !statSync(file).isFile()) {
      // Without a build (`npm run build`; npm start does it) `/` still says how to connect.
      if (path === '/') return serveLandingPage(req, res);
      return notFound(res, 'not found');
    }
    const type = CONTENT_TYPES[extname(file)] ?? 'application/octet-stream';
    const body = readFileSync(file);
    res.writeHead(200, {
      'content-type': type,
      'content-length': body.length,
      // Bundles are rebuilt in place under the same names: revalidate every time.
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}

let defaultHandler: AssetHandler | null = null;

/** Serves the demo and bundles from the project's dist/ folder; false for paths it does not own. */
export function serveDemoAssets(req: IncomingMessage, res: ServerResponse): boolean {
  defaultHandler ??= createDemoAssetHandler(join(projectRoot(), 'dist'));
  return defaultHandler(req, res);
}
