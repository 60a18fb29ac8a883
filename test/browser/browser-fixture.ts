import type { BuildOptions } from 'esbuild';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import {
  buildBundles,
  bundlePageScript,
  chromiumAvailable,
  launchUser,
  servePage,
  startDemoServer,
  Teardown,
  type StaticServer,
  type User,
} from './helpers-browser.js';
import { demoUrl, openDemo } from './helpers-page.js';

/** What `usePageFixture` gives a describe block; every field is this test's. */
export interface PageFixture {
  readonly server: TestServer;
  /** The static server for the page (and its bundles). */
  readonly site: StaticServer;
  /** Cleanup run after the test, last added first. */
  readonly teardown: Teardown;
  /** The users launched in this test. */
  readonly users: readonly User[];
  /** A Chromium user for this test; its browser log is printed if the test fails. */
  launch(name: string): Promise<User>;
}

/** What `useBrowserFixture` gives a describe block; every field is this test's. */
export interface BrowserFixture extends PageFixture {
  /** The static server for the demo page and bundles (= site). */
  readonly demo: StaticServer;
  /** A document id no other test uses. */
  readonly docId: string;
  /** A user with the demo page open on this test's document. */
  openDemo(name: string): Promise<User>;
}

/**
 * Mocha hooks for Chromium tests: chromium is required (fails in CI, skips loudly elsewhere),
 * `prepare` runs once; each test gets a Tandem server and the site `startSite` serves, and
 * everything is closed after it (browser logs printed when it failed).
 */
function useChromiumFixture(
  prepare: () => Promise<unknown>,
  startSite: () => Promise<StaticServer>,
  onTest: () => void = () => {},
): PageFixture {
  const teardown = new Teardown();
  let server: TestServer | null = null;
  let site: StaticServer | null = null;
  let users: User[] = [];

  before(async function () {
    this.timeout(60_000);
    requireService(this, chromiumAvailable(), 'Debian chromium at /usr/bin/chromium (apt-get install chromium)');
    await prepare();
  });
  beforeEach(async () => {
    const started = await startTestServer();
    server = started;
    teardown.add(() => started.close());
    const staticServer = await startSite();
    site = staticServer;
    teardown.add(() => staticServer.close());
    users = [];
    onTest();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const u of users) for (const line of u.log) console.log(`      ${line}`);
    await teardown.run();
    server = null;
    site = null;
  });

  const inTest = <T>(value: T | null): T => {
    if (value === null) throw new Error('browser fixture: used outside a test');
    return value;
  };
  return {
    get server() {
      return inTest(server);
    },
    get site() {
      return inTest(site);
    },
    get users() {
      return users;
    },
    teardown,
    async launch(name) {
      const user = await launchUser(name, teardown.add);
      users.push(user);
      return user;
    },
  };
}

/**
 * A test page of its own: `/` is `html`, `scriptPath` the script bundled once from `script`
 * (bundlePageScript); each test gets a Tandem server and the page's site.
 */
export function usePageFixture(html: string, scriptPath: string, script: BuildOptions): PageFixture {
  let bundle: string | null = null;
  return useChromiumFixture(
    async () => {
      bundle ??= await bundlePageScript(script);
    },
    () => servePage(html, { [scriptPath]: bundle ?? '' }),
  );
}

/**
 * The demo page: the bundles are built once; each test gets a Tandem server, a demo server
 * (plus `extraPages`) and a fresh document id.
 */
export function useBrowserFixture(docPrefix: string, extraPages: Record<string, string> = {}): BrowserFixture {
  let docId = '';
  let counter = 0;
  const base = useChromiumFixture(
    buildBundles,
    async () => startDemoServer(await buildBundles(), extraPages),
    () => {
      docId = `${docPrefix}-${process.pid}-${++counter}`;
    },
  );
  const fixture: BrowserFixture = {
    get server() {
      return base.server;
    },
    get site() {
      return base.site;
    },
    get demo() {
      return base.site;
    },
    get users() {
      return base.users;
    },
    get docId() {
      return docId;
    },
    teardown: base.teardown,
    launch: (name) => base.launch(name),
    async openDemo(name) {
      const user = await fixture.launch(name);
      await openDemo(user.page, demoUrl(fixture.demo.url, fixture.server.url, docId, name));
      return user;
    },
  };
  return fixture;
}
