import { renameOptions } from '@backplane/internal'
import { DEPRECATION_CODE, type LegacyBackoff, moveLegacyRetry } from '../retry.js'

type Renames = readonly { from: string; to: string }[]

// Sections of the bridge options whose old names (before durations and the retry shape) still work.
const SECTION_RENAMES: Readonly<Record<string, Renames>> = {
  limits: [{ from: 'requestTimeoutMs', to: 'requestTimeout' }],
  webhooks: [
    { from: 'timeoutMs', to: 'timeout' },
    { from: 'maxRetryAfterMs', to: 'maxRetryAfter' },
  ],
  sse: [{ from: 'heartbeatMs', to: 'heartbeat' }],
  idempotency: [{ from: 'ttlMs', to: 'ttl' }],
}
const WITH_RETRY = new Set(['webhooks', 'routing'])

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function rename<T>(value: T, renames: Renames, where: string): T {
  return renameOptions(value, renames, where, DEPRECATION_CODE)
}

/**
 * Bridge options (or a config file) with the names older versions took moved to the current
 * ones, each with a one-time DeprecationWarning: `...Ms` times, and `maxAttempts` + `backoff`
 * into `retry`. Run before validation, so a name given both ways keeps the new one.
 */
export function renameBridgeOptions(input: unknown): unknown {
  if (!isRecord(input)) return input
  const out: Record<string, unknown> = { ...input }
  for (const [section, renames] of Object.entries(SECTION_RENAMES))
    if (isRecord(out[section])) out[section] = rename(out[section], renames, `bridge ${section}`)
  for (const section of WITH_RETRY)
    if (isRecord(out[section])) out[section] = moveLegacyRetry(out[section], `bridge ${section}`)
  if (isRecord(out.brokers)) {
    out.brokers = Object.fromEntries(
      Object.entries(out.brokers).map(([name, spec]) => [
        name,
        // A connected Broker is passed on as it is.
        isRecord(spec) && 'url' in spec
          ? rename(spec, [{ from: 'closeTimeoutMs', to: 'closeTimeout' }], `bridge brokers.${name}`)
          : spec,
      ]),
    )
  }
  if (isRecord(out.store) && isRecord(out.store.etcd))
    out.store = { ...out.store, etcd: renameEtcdOptions(out.store.etcd) }
  return out
}

/** etcd store options with `timeoutMs` moved to `timeout`. */
export function renameEtcdOptions<T>(input: T): T {
  return rename(input, [{ from: 'timeoutMs', to: 'timeout' }], 'bridge store.etcd')
}

/** The option names older versions took, typed so that existing code compiles. */
export interface LegacyBridgeOptions {
  limits?: {
    /** @deprecated use `requestTimeout` */
    requestTimeoutMs?: number | undefined
  }
  webhooks?: {
    /** @deprecated use `timeout` */
    timeoutMs?: number | undefined
    /** @deprecated use `maxRetryAfter` */
    maxRetryAfterMs?: number | undefined
    /** @deprecated use `retry: { maxAttempts }` */
    maxAttempts?: number | undefined
    /** @deprecated use `retry: { initialDelay, maxDelay, factor, jitter }` */
    backoff?: LegacyBackoff | undefined
  }
  routing?: {
    /** @deprecated use `retry: { maxAttempts }` */
    maxAttempts?: number | undefined
    /** @deprecated use `retry: { initialDelay, maxDelay, factor, jitter }` */
    backoff?: LegacyBackoff | undefined
  }
  sse?: {
    /** @deprecated use `heartbeat` */
    heartbeatMs?: number | undefined
  }
  idempotency?: {
    /** @deprecated use `ttl` */
    ttlMs?: number | undefined
  }
}
