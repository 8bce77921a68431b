import { describe, expectTypeOf, it } from 'vitest'
import type { z } from 'zod'
import { type Backoff, durationSchema, type RetryOptions, retrySchema } from '../src/index.js'

describe('types', () => {
  it('a duration option takes a number or a string and gives a number', () => {
    const schema = durationSchema()
    expectTypeOf<z.input<typeof schema>>().toEqualTypeOf<string | number>()
    expectTypeOf<z.output<typeof schema>>().toEqualTypeOf<number>()
  })

  it('the retry schema takes RetryOptions and gives a Backoff', () => {
    const schema = retrySchema({ maxAttempts: 3, initialDelay: 1, maxDelay: 2, factor: 2, jitter: 'full' })
    expectTypeOf<z.output<typeof schema>>().toEqualTypeOf<Backoff>()
    expectTypeOf<{ initialDelay: '1s'; jitter: 'equal' }>().toExtend<RetryOptions>()
    // @ts-expect-error: the old field names are not part of the shape
    expectTypeOf<{ initialMs: 1 }>().toExtend<RetryOptions>()
  })
})
