export type { Duration, RetryOptions } from '@backplane/internal'
export {
  type ChangeEvent,
  type Config,
  type ConfigEvents,
  type CreateConfigOptions,
  createConfig,
  type PathListener,
  type StaleEvent,
} from './config.js'
export { ConfigError, type ConfigErrorCode, type ConfigIssue } from './errors.js'
export type { ConfigLogger } from './logger.js'
export type { ConfigPath, DeepReadonly, PathValue } from './paths.js'
export { isSealed, openValue, sealValue } from './sealing/envelope.js'
export {
  formatKeyRing,
  generateKey,
  KEYS_ENV,
  type KeyRing,
  type LoadKeyRingOptions,
  loadKeyRing,
  parseKeyRing,
} from './sealing/key-ring.js'
export { secret } from './secret.js'
export { type EnvSourceOptions, env } from './sources/env.js'
export { type FileSourceOptions, file } from './sources/file.js'
export { type MemorySource, memory } from './sources/memory.js'
export type { ConfigSource, SourceChangeInfo, SourceContext, Unwatch } from './sources/types.js'
export type { Change, ConfigTree } from './tree.js'
