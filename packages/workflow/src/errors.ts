import { brandError, hasBrand } from '@backplane/internal'

/** Stable codes of every error `@backplane/workflow` throws. */
export type WorkflowErrorCode =
  | 'WORKFLOW_INVALID_OPTIONS'
  | 'WORKFLOW_INVALID_DEFINITION'
  | 'WORKFLOW_UNKNOWN_MACHINE'
  | 'WORKFLOW_UNKNOWN_VERSION'
  | 'WORKFLOW_UNKNOWN_INSTANCE'
  | 'WORKFLOW_DUPLICATE_INSTANCE'
  | 'WORKFLOW_INVALID_CONTEXT'
  | 'WORKFLOW_INVALID_EVENT'
  | 'WORKFLOW_EVENT_NOT_ACCEPTED'
  | 'WORKFLOW_ACTION_FAILED'
  | 'WORKFLOW_NOT_FAILED'
  | 'WORKFLOW_MIGRATION_FAILED'
  | 'WORKFLOW_CONFLICT'
  | 'WORKFLOW_STORE_UNAVAILABLE'
  | 'WORKFLOW_CLIENT_MISSING'
  | 'WORKFLOW_TIMEOUT'
  | 'WORKFLOW_CLOSED'

const BRAND = '@backplane/workflow/WorkflowError'

/**
 * Every error the engine, the stores and the definitions throw. `code` is stable across releases;
 * `details` lists what was wrong, one entry per problem (invalid options, definition errors, schema issues).
 */
export class WorkflowError extends Error {
  override readonly name = 'WorkflowError'
  readonly code: WorkflowErrorCode
  readonly details: readonly string[]
  /** The instance concerned, when there is one. */
  readonly instanceId: string | undefined

  constructor(
    code: WorkflowErrorCode,
    message: string,
    options?: { details?: string[]; cause?: unknown; instanceId?: string | undefined },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    brandError(this, BRAND)
    this.code = code
    this.details = options?.details ?? []
    this.instanceId = options?.instanceId
  }

  /** True for a WorkflowError from any installed copy of this package (optionally with this code). */
  static is(value: unknown, code?: WorkflowErrorCode): value is WorkflowError {
    return hasBrand(value, BRAND) && (code === undefined || (value as WorkflowError).code === code)
  }
}

/**
 * What a store operation failed with, for the caller: a WorkflowError as it is (it already says
 * what was wrong), anything else (a driver's error) as `WORKFLOW_STORE_UNAVAILABLE` naming the
 * store and the operation, with the original as `cause`.
 */
export function storeUnavailable(kind: string, what: string, error: unknown, instanceId?: string): WorkflowError {
  if (WorkflowError.is(error)) return error
  return new WorkflowError(
    'WORKFLOW_STORE_UNAVAILABLE',
    `${kind} store: ${what} failed: ${(error as Error)?.message ?? error}`,
    { cause: error, instanceId },
  )
}
