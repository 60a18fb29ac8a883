/**
 * Browser test plumbing: build the browser bundles once per run into a temp folder, serve
 * them (through the same `createDemoAssetHandler` that `npm start` uses) on port 0, and
 * launch one headless Debian Chromium per simulated user (a second context in one Chromium
 * closed its pages on this machine, STACK-NOTES).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createDemoAssetHandler } from '../../server/transport/demo-assets.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots and other artefacts for people to look at (gitignored). */
export const OUTPUT_DIR = join(ROOT, 'test-output');

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

let built: Promise<string> | null = null;

/**
 * Builds demo/build-targets.mjs's targets into a temp dist folder, once per test run, so
 * tests never race `npm run build` writing dist/. Returns the folder.
 */
export function buildBundles(): Promise<string> {
  built ??= (async () => {
    const dist = mkdtempSync(join(tmpdir(), 'tandem-dist-'));
    process.once('exit', () => rmSync(dist, { recursive: true, force: true }));
    // The targets module is plain JS shared with scripts/build.mjs.
    const targetsModule = (await import(join(ROOT, 'demo/build-targets.mjs'))) as {
      default: (root: string) => Array<{ outfile: string; options: BuildOptions }>;
    };
    const targets = targetsModule.default(ROOT);
    await Promise.all(
      targets.map(({ outfile, options }) =>
        build({ ...options, outfile: join(dist, relative(join(ROOT, 'dist'), outfile)), bundle: true, logLevel: 'error' }),
      ),
    );
    return dist;
  })();
  return built;
}

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1, port 0, with `handler`; `close()` also drops open connections. */
export async function serveHttp(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<StaticServer> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serves the built demo, plus `extra` pages (path → HTML) for tests. */
export function startDemoServer(dist: string, extra: Record<string, string> = {}): Promise<StaticServer> {
  const assets = createDemoAssetHandler(dist);
  return serveHttp((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const page = extra[path];
    if (page !== undefined) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
      return;
    }
    if (!assets(req, res)) {
      res.writeHead(404);
      res.end('not found');
    }
  });
}

/** Serves a test page: `/` is `html`, every other path of `scripts` its JavaScript. */
export function servePage(html: string, scripts: Record<string, string>): Promise<StaticServer> {
  return serveHttp((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const script = scripts[path];
    if (path === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else if (script !== undefined) res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(script);
    else res.writeHead(404).end();
  });
}

/** Bundles a test page's script as the browser bundles are built (demo/build-targets.mjs), unminified. */
export async function bundlePageScript(options: BuildOptions): Promise<string> {
  const result = await build({
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    target: ['chrome109'],
    logLevel: 'error',
    ...options,
  });
  return result.outputFiles![0]!.text;
}

export interface User {
  name: string;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Page errors and console errors, to print when a test fails. */
  log: string[];
}

/** One Chromium per user; `track` registers the teardown. */
export async function launchUser(name: string, track: (close: () => Promise<void>) => void): Promise<User> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    headless: true,
  });
  track(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // tsx compiles this file with esbuild's keepNames, which wraps named inner functions of
  // page.evaluate callbacks in `__name(...)`; give pages an identity version of it.
  await context.addInitScript({ content: 'window.__name = (f) => f;' });
  const page = await context.newPage();
  const log: string[] = [];
  page.on('pageerror', (err) => log.push(`[${name}] page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') log.push(`[${name}] console.${msg.type()}: ${msg.text()}`);
  });
  return { name, browser, context, page, log };
}

/** Runs teardown functions in reverse order, all of them even when some fail. */
export class Teardown {
  private readonly steps: Array<() => Promise<void>> = [];
  readonly add = (step: () => Promise<void>): void => {
    this.steps.push(step);
  };

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

export function outputPath(name: string): string {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  return join(OUTPUT_DIR, name);
}
