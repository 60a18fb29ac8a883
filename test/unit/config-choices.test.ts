import assert from 'node:assert/strict';
import { TandemErrorCode } from '../../client/protocol.js';
import { ConfigError, loadConfig, type Config } from '../../server/config.js';

/** The variables that take one of a few words, and how each is read back in the Config. */
const CHOICES = [
  { name: 'SQLITE_SYNCHRONOUS', words: ['FULL', 'NORMAL'], fallback: 'NORMAL', read: (c: Config) => c.sqliteSynchronous },
  { name: 'SQLITE_CHECKPOINTS', words: ['background', 'inline'], fallback: 'background', read: (c: Config) => c.sqliteCheckpoints },
  {
    name: 'LOG_LEVEL',
    words: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    fallback: 'info',
    read: (c: Config) => c.logLevel,
  },
  { name: 'AUTH', words: ['none', 'jwt'], fallback: null, read: (c: Config) => c.auth.mode },
];

describe('config: variables that take one of a few words', () => {
  for (const { name, words, fallback, read } of CHOICES) {
    it(`${name}: ${words.join(' | ')}, in any case; unset or empty is the default; anything else is TANDEM_BAD_CONFIG naming the choices`, () => {
      // AUTH=jwt needs a key to pass; the others need nothing besides.
      const extra = name === 'AUTH' ? { AUTH_JWT_SECRET: 'x'.repeat(32) } : {};
      const envFor = (word: string) => (name === 'AUTH' && word.toLowerCase() === 'none' ? { AUTH: word } : { ...extra, [name]: word });
      for (const word of words) {
        for (const spelled of [word.toUpperCase(), word.toLowerCase()])
          assert.equal(read(loadConfig(envFor(spelled))), word, `${name}=${spelled}`);
      }
      if (fallback !== null) {
        assert.equal(read(loadConfig({})), fallback);
        assert.equal(read(loadConfig({ [name]: '' })), fallback);
      } else {
        // AUTH unset: open on loopback, but not chosen explicitly (see auth-transport tests).
        assert.deepEqual(loadConfig({ AUTH: '' }).auth, { mode: 'none', explicit: false });
      }
      for (const bad of ['loud', `${words[0]} `, 'on']) {
        assert.throws(
          () => loadConfig({ [name]: bad }),
          (err: unknown) =>
            err instanceof ConfigError &&
            err.code === TandemErrorCode.BAD_CONFIG &&
            err.variable === name &&
            err.message === `${name} must be one of ${words.join(', ')}, got "${bad}"`,
          `${name}=${JSON.stringify(bad)}`,
        );
      }
    });
  }
});
