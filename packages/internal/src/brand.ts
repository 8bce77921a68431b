/**
 * Error brands: a `Symbol.for` key set on each instance, so `XError.is(error)` holds for an error
 * thrown by another installed copy of the same package, where `instanceof` fails.
 */
export function brandError(error: object, brand: string): void {
  Object.defineProperty(error, Symbol.for(brand), { value: true, enumerable: false })
}

export function hasBrand(value: unknown, brand: string): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[Symbol.for(brand)] === true
}

/**
 * Shared on purpose, and the only brand that is: an activity of @backplane/workflow may call a
 * @backplane/messaging handler (or the other way round), and "do not retry this" must hold for
 * both packages' NonRetryableError, whichever threw it.
 */
export const NON_RETRYABLE_BRAND = '@backplane/NonRetryableError'
