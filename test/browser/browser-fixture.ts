import { startTestServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/skip.js';
import { buildBundles, chromiumAvailable, launchUser, startDemoServer, Teardown, type StaticServer, type User } from './helpers-browser.js';
import { demoUrl, openDemo } from './helpers-page.js';

/** What `useBrowserFixture` gives a describe block; every field is this test's. */
export interface BrowserFixture {
  readonly server: TestServer;
  /** The static server for the demo page and bundles. */
  readonly demo: StaticServer;
  /** A document id no other test uses. */
  readonly docId: string;
  /** Cleanup run after the test, last added first. */
  readonly teardown: Teardown;
  /** A Chromium user for this test; its browser log is printed if the test fails. */
  launch(name: string): Promise<User>;
  /** A user with the demo page open on this test's document. */
  openDemo(name: string): Promise<User>;
}

/**
 * Mocha hooks for the Chromium tests: chromium is required (fails in CI, skips loudly
 * elsewhere), the bundles are built once; each test gets a Tandem server, a demo server
 * (plus `extraPages`), a fresh document id, and everything is closed after it.
 */
export function useBrowserFixture(docPrefix: string, extraPages: Record<string, string> = {}): BrowserFixture {
  const teardown = new Teardown();
  let server: TestServer | null = null;
  let demo: StaticServer | null = null;
  let docId = '';
  let counter = 0;
  let users: User[] = [];

  before(async function () {
    requireService(this, chromiumAvailable(), 'Debian chromium at /usr/bin/chromium (apt-get install chromium)');
    await buildBundles();
  });
  beforeEach(async () => {
    const started = await startTestServer();
    server = started;
    teardown.add(() => started.close());
    const staticServer = await startDemoServer(await buildBundles(), extraPages);
    demo = staticServer;
    teardown.add(() => staticServer.close());
    docId = `${docPrefix}-${process.pid}-${++counter}`;
    users = [];
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const u of users) for (const line of u.log) console.log(`      ${line}`);
    await teardown.run();
    server = null;
    demo = null;
  });

  const inTest = <T>(value: T | null): T => {
    if (value === null) throw new Error('useBrowserFixture: used outside a test');
    return value;
  };
  const fixture: BrowserFixture = {
    get server() {
      return inTest(server);
    },
    get demo() {
      return inTest(demo);
    },
    get docId() {
      return docId;
    },
    teardown,
    async launch(name) {
      const user = await launchUser(name, teardown.add);
      users.push(user);
      return user;
    },
    async openDemo(name) {
      const user = await fixture.launch(name);
      await openDemo(user.page, demoUrl(fixture.demo.url, fixture.server.url, docId, name));
      return user;
    },
  };
  return fixture;
}
