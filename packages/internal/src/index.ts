export {
  type Backoff,
  backoffDelay,
  backoffSequence,
  type Jitter,
  jitterKind,
  type RetryOptions,
  retrySchema,
} from './backoff.js'
export { brandError, hasBrand, NON_RETRYABLE_BRAND } from './brand.js'
export { deferred } from './deferred.js'
export { deprecate, renameOptions } from './deprecation.js'
export { DURATION_EXPECTED, type Duration, type DurationRule, durationSchema, parseDuration } from './duration.js'
export { type Instruments, lazyInstruments } from './instruments.js'
export { isLogger, type LoggerLike, silentLogger } from './logger.js'
export { issueLines, parseWith } from './options.js'
export { isModuleMissing, loadPeer } from './peer.js'
export { sleep, withTimeout } from './timers.js'
