/**
 * One duration grammar in every package: the table in packages/internal/test/duration-table.ts,
 * run through a time option of each package's own options schema.
 */
import { describe, expect, it } from 'vitest'
import { createConfigOptionsSchema } from '../packages/config-client/src/options.js'
import { DURATION_TABLE, INVALID_DURATIONS } from '../packages/internal/test/duration-table.js'
import { rollingFileOptionsSchema } from '../packages/logging/src/options.js'
import { brokerOptionsSchema } from '../packages/messaging/src/options.js'
import { engineOptionsSchema } from '../packages/workflow/src/options.js'
import { memoryStore } from '../packages/workflow/src/stores/memory.js'
import { counter } from '../packages/workflow/test/fixtures/counter.js'

type Parse = (value: unknown) => { success: boolean; ms?: number | undefined }

const options: Record<string, Parse> = {
  '@backplane/logging file.maxAge': (maxAge) => {
    const r = rollingFileOptionsSchema.safeParse({ dir: 'logs', maxAge })
    return { success: r.success, ms: r.data?.maxAge }
  },
  '@backplane/config-client debounce': (debounce) => {
    const r = createConfigOptionsSchema.safeParse({ schema: createConfigOptionsSchema, debounce })
    return { success: r.success, ms: r.data?.debounce }
  },
  '@backplane/messaging closeTimeout': (closeTimeout) => {
    const r = brokerOptionsSchema.safeParse({ closeTimeout })
    return { success: r.success, ms: r.data?.closeTimeout }
  },
  '@backplane/workflow closeTimeout': (closeTimeout) => {
    const r = engineOptionsSchema.safeParse({ store: memoryStore(), machines: [counter], closeTimeout })
    return { success: r.success, ms: r.data?.closeTimeout }
  },
}

describe.each(Object.entries(options))('%s', (_name, parse) => {
  // maxAge has a floor of 1 ms: a zero duration there is refused on purpose, not by the grammar.
  it.each(DURATION_TABLE.filter(([, ms]) => ms > 0))('accepts %j as %d ms', (input, ms) => {
    expect(parse(input)).toEqual({ success: true, ms })
  })

  it.each(INVALID_DURATIONS)('refuses %j', (input) => {
    expect(parse(input).success).toBe(false)
  })
})
