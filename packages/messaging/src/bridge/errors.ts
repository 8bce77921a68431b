import { brandError, hasBrand, issueLines as sharedIssueLines } from '@backplane/internal'
import type { z } from 'zod'

/** Stable codes of the bridge's errors: the `error.code` of every JSON error answer. */
export type BridgeErrorCode =
  | 'INVALID_JSON'
  | 'INVALID_REQUEST'
  | 'INVALID_TOPIC'
  | 'INVALID_CLOUDEVENT'
  | 'INVALID_KEY'
  | 'INVALID_HEADER'
  | 'JSON_TOO_DEEP'
  | 'MALFORMED_HTTP'
  | 'HEADERS_TOO_LARGE'
  | 'UNKNOWN_BROKER'
  | 'UNKNOWN_TOPIC'
  | 'ROUTE_LOOP'
  | 'WEBHOOK_URL_NOT_ALLOWED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'REQUEST_TIMEOUT'
  | 'ALREADY_EXISTS'
  | 'DECLARED_IN_CONFIG'
  | 'PAYLOAD_TOO_LARGE'
  | 'BATCH_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'INTERNAL'
  | 'BROKER_UNAVAILABLE'
  | 'NOT_READY'
  | 'SHUTTING_DOWN'
  | 'PUBLISH_TIMEOUT'
  | 'STORE_FAILED'
  // Not HTTP answers: thrown by createBridge, loadBridgeConfig and the stores.
  | 'BRIDGE_INVALID_CONFIG'
  | 'BRIDGE_INSECURE'
  | 'BRIDGE_STORE_CLIENT_MISSING'
  | 'BRIDGE_STORE_CORRUPT'

const BRAND = '@backplane/messaging/BridgeError'

/**
 * Every error the bridge answers with or throws. `status` is the HTTP status it is answered
 * with, `code` is stable, `details` says field by field what was wrong.
 */
export class BridgeError extends Error {
  override readonly name = 'BridgeError'
  readonly status: number
  readonly code: BridgeErrorCode
  readonly details: readonly string[]

  constructor(
    status: number,
    code: BridgeErrorCode,
    message: string,
    options?: { details?: readonly string[] | undefined; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    brandError(this, BRAND)
    this.status = status
    this.code = code
    this.details = options?.details ?? []
  }

  /** True for a BridgeError from any installed copy of this package. */
  static is(value: unknown): value is BridgeError {
    return hasBrand(value, BRAND)
  }

  toJSON(): { error: { code: BridgeErrorCode; message: string; details: readonly string[] } } {
    return { error: { code: this.code, message: this.message, details: this.details } }
  }
}

/**
 * zod issues as `path: message` lines, as the shared ones but for the word an HTTP client sees:
 * a body has unknown fields, not options.
 */
export function issueLines(issues: readonly z.core.$ZodIssue[], root = '(body)'): string[] {
  return sharedIssueLines(issues, root).map((line, index) =>
    issues[index]?.code === 'unrecognized_keys' ? line.replace(': unknown option(s) ', ': unknown field(s) ') : line,
  )
}
