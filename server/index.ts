/**
 * Tandem's server for embedding in a Node application (the `tandem` package's main export;
 * the `tandem` command runs the same server from the environment).
 *
 *   import { loadConfig, createLogger, startServer } from 'tandem';
 *   const config = loadConfig({ ...process.env, PORT: '0' });
 *   const server = await startServer(config, createLogger('info'), { access });
 *   // server.url, server.backend (ShareDB), … ; await server.close();
 */
export { startServer, type TandemServer, type EmbeddingOptions } from './app.js';
export { loadConfig, ConfigError, type Config, type ConfigSource, type ResourceLimits, type AuthConfig } from './config.js';
export { createLogger, type Logger } from './ops/logger.js';
export type { AccessHook, AccessRequest } from './auth/access.js';
export type { Identity } from './auth/identity.js';
export type { AccessAction, RulesFile, CollectionRules, Rule } from './auth/rules.js';
export { mintToken, type MintOptions } from './auth/mint-token.js';
/** For webhook receivers: checks a delivery's `tandem-signature` against its raw body. */
export { verifyWebhookSignature } from './webhooks/signature.js';
export { TandemError, TandemErrorCode, type ErrorCode } from '../client/protocol.js';
