import { brandError, hasBrand } from '@backplane/internal'

/** Stable codes of every error `@backplane/config-client` throws or emits. */
export type ConfigErrorCode =
  /** Options of createConfig, a source, register/discover or the CLI are malformed. */
  | 'CONFIG_INVALID_OPTIONS'
  /** The merged configuration does not satisfy the schema (thrown at start, `invalid` event later). */
  | 'CONFIG_INVALID'
  /** A source could not be read or parsed: a missing or broken file, a failing custom source. */
  | 'CONFIG_SOURCE_FAILED'
  /**
   * At start a source did not answer within `startTimeout` and there was no snapshot to start from;
   * or (an `error` event) a source down at start still failed after `retry.maxAttempts` loads.
   */
  | 'CONFIG_UNAVAILABLE'
  /** A call to etcd (or a source's load) did not answer in time. */
  | 'CONFIG_TIMEOUT'
  /** The etcd subpath was used without the optional peer dependency `etcd3` installed. */
  | 'CONFIG_ETCD_MISSING'
  /** A listener threw; reported as an `error` event, the other listeners and the watcher go on. */
  | 'CONFIG_LISTENER_FAILED'
  /** The snapshot file could not be read or written. */
  | 'CONFIG_SNAPSHOT_FAILED'
  /**
   * A sealed (encrypted) value could not be opened: no key ring, a key id the ring does not hold,
   * a malformed envelope, or one that fails authentication (altered, or sealed for another key).
   */
  | 'CONFIG_SEALED'
  /**
   * A release was not published: the configuration (or the release it was based on) changed since
   * it was read. Nothing was written; read again and publish on top of the new release.
   */
  | 'CONFIG_CONFLICT'

/** One schema violation of a rejected configuration, with where the offending value came from. */
export interface ConfigIssue {
  /** Path in the configuration, e.g. `payment.timeoutMs` (`''` for the root). */
  readonly path: string
  /** zod's message, e.g. `Invalid input: expected number, received string`. */
  readonly message: string
  /** zod's issue code, e.g. `invalid_type`. */
  readonly code: string
  /** Name of the source that supplies the value at `path` (the highest-precedence one), if any does. */
  readonly source: string | undefined
  /** That source's own key for it: an etcd key, an environment variable, a file path. */
  readonly key: string | undefined
}

interface ConfigErrorOptions {
  details?: readonly string[]
  issues?: readonly ConfigIssue[]
  source?: string | undefined
  keys?: readonly string[]
  revision?: number | undefined
  cause?: unknown
}

const BRAND = '@backplane/config-client/ConfigError'

/**
 * Every error of this package. `code` is stable across releases. For `CONFIG_INVALID`, `issues`
 * lists each schema violation with the source and key that supplied the value, `source`/`keys`
 * name the update that was rejected and `cause` is the original ZodError. Values of secret fields
 * never appear in messages.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code: ConfigErrorCode
  /** One line per problem (for invalid options: one per offending field). */
  readonly details: readonly string[]
  readonly issues: readonly ConfigIssue[]
  /** The source whose update (or load) caused this error. */
  readonly source: string | undefined
  /** The keys of that update: etcd keys, file paths, environment variables. */
  readonly keys: readonly string[]
  /** The etcd revision of that update, when it came from etcd. */
  readonly revision: number | undefined

  constructor(code: ConfigErrorCode, message: string, options: ConfigErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    brandError(this, BRAND)
    this.code = code
    this.details = options.details ?? []
    this.issues = options.issues ?? []
    this.source = options.source
    this.keys = options.keys ?? []
    this.revision = options.revision
  }

  /** True for a ConfigError from any installed copy of this package (also across the CJS and ESM builds). */
  static is(value: unknown): value is ConfigError {
    return hasBrand(value, BRAND)
  }
}

/** The message of any thrown value, for logs and wrapped errors. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message
  return typeof error === 'string' ? error : String(error)
}

/** The `error` event of a listener (of `event`) that threw. */
export function listenerFailure(error: unknown, event: string): ConfigError {
  return new ConfigError(
    'CONFIG_LISTENER_FAILED',
    `a config ${event} listener threw: ${messageOf(error)} (the other listeners and the watch go on)`,
    { cause: error },
  )
}

/** The CONFIG_TIMEOUT error of a call that did not answer within `ms`. */
export function timedOut(what: string, ms: number): ConfigError {
  return new ConfigError('CONFIG_TIMEOUT', `${what} did not answer within ${ms} ms`)
}
