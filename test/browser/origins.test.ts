import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { AUTH_ENV, testToken } from '../helpers/auth.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import { chromiumAvailable, launchUser, Teardown } from './helpers-browser.js';

/** A blank page on its own origin: where a (malicious or trusted) web app would run. */
async function pageServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>app</title>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { origin, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface Attempts {
  /** The document's data read over /sharedb, or why not. */
  sharedb: string;
  /** socket.io over WebSocket: the CONNECT answer, or why not. */
  socketIoWebSocket: string;
  /** socket.io long-polling handshake over fetch. */
  socketIoPolling: string;
  /** A plain HTTP route. */
  http: string;
  /** The ES-module embed bundle. */
  embed: string;
}

/** What a page on its own origin manages to do against the server, with a valid token. */
function attempt(page: Page, server: string, token: string): Promise<Attempts> {
  return page.evaluate(
    async ({ server, token }) => {
      const ws = server.replace(/^http/, 'ws');
      const socket = (
        url: string,
        onOpen: (s: WebSocket) => void,
        onMessage: (data: string, done: (v: string) => void, s: WebSocket) => void,
      ) =>
        new Promise<string>((resolve) => {
          const s = new WebSocket(url);
          const timer = setTimeout(() => resolve('timeout'), 5_000);
          const done = (v: string) => {
            clearTimeout(timer);
            s.close();
            resolve(v);
          };
          s.onopen = () => onOpen(s);
          s.onerror = () => done('refused');
          s.onmessage = (e) => onMessage(String(e.data), done, s);
        });
      const sharedb = await socket(
        `${ws}/sharedb?token=${encodeURIComponent(token)}`,
        (s) => s.send(JSON.stringify({ a: 'f', c: 'notes', d: 'secret', id: 1 })),
        (data, done) => {
          const message = JSON.parse(data) as { a?: string; data?: { data?: unknown } };
          if (message.a === 'f') done(JSON.stringify(message.data?.data));
        },
      );
      const socketIoWebSocket = await socket(
        `${ws}/socket.io/?EIO=4&transport=websocket`,
        () => undefined,
        (data, done, s) => {
          // engine.io open: now join the default namespace with the token.
          if (data.startsWith('0')) return s.send(`40${JSON.stringify({ token })}`);
          if (data.startsWith('40')) done('joined');
          if (data.startsWith('44')) done('join refused');
        },
      );
      const text = (url: string) =>
        fetch(url).then(
          (r) => `status ${r.status}`,
          () => 'blocked',
        );
      return {
        sharedb,
        socketIoWebSocket,
        socketIoPolling: await text(`${server}/socket.io/?EIO=4&transport=polling`),
        http: await text(`${server}/healthz`),
        embed: await import(/* @vite-ignore */ `${server}/tandem-embed.mjs`).then(
          () => 'loaded',
          () => 'blocked',
        ),
      };
    },
    { server, token },
  );
}

describe('browser: allowed origins (CORS_ORIGINS)', function () {
  this.timeout(60_000);
  const teardown = new Teardown();
  let server: TestServer;
  let allowed: { origin: string; close(): Promise<void> };
  let other: { origin: string; close(): Promise<void> };

  before(function () {
    requireService(this, chromiumAvailable(), 'Debian chromium at /usr/bin/chromium (apt-get install chromium)');
  });
  beforeEach(async () => {
    allowed = await pageServer();
    teardown.add(() => allowed.close());
    other = await pageServer();
    teardown.add(() => other.close());
    server = await startTestServer({ ...AUTH_ENV, CORS_ORIGINS: allowed.origin });
    teardown.add(() => server.close());
    // A document only an authenticated client can read; the pages hold a valid token.
    const connection = server.backend.connect();
    await new Promise<void>((resolve, reject) =>
      connection.get('notes', 'secret').create({ text: 'classified' }, 'json1', (err) => (err ? reject(err) : resolve())),
    );
    connection.close();
  });
  afterEach(() => teardown.run());

  it('a page from a disallowed origin can neither open a socket (either transport) nor read a document; the allowed page can', async () => {
    const token = await testToken('page-user');
    const intruder = await launchUser('intruder', teardown.add);
    await intruder.page.goto(`${other.origin}/`);
    const refused = await attempt(intruder.page, server.url, token);
    assert.deepEqual(refused, {
      sharedb: 'refused',
      socketIoWebSocket: 'refused',
      socketIoPolling: 'blocked',
      http: 'blocked',
      embed: 'blocked',
    });

    const app = await launchUser('app', teardown.add);
    await app.page.goto(`${allowed.origin}/`);
    const allowedResult = await attempt(app.page, server.url, token);
    assert.equal(allowedResult.sharedb, JSON.stringify({ text: 'classified' }));
    assert.equal(allowedResult.socketIoWebSocket, 'joined');
    assert.equal(allowedResult.socketIoPolling, 'status 200');
    assert.equal(allowedResult.http, 'status 200');
    assert.equal(allowedResult.embed, 'loaded');
  });
});
