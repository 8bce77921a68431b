/** The environment source: variable names to paths, values coerced to the schema types. */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ConfigError, createConfig, env } from '../src/index.js'
import { closeTrackedAfterEach, track } from './helpers/config.js'

closeTrackedAfterEach()

describe('environment source', () => {
  const schema = z.object({
    payment: z.object({ timeoutMs: z.number().int(), enabled: z.boolean(), mode: z.enum(['live', 'test']) }),
    limits: z.object({ big: z.bigint(), ratio: z.number(), tags: z.array(z.string()), ports: z.array(z.number()) }),
    retry: z.object({ backoff: z.object({ max_delay: z.number() }) }),
    labels: z.record(z.string(), z.string()),
    extra: z.object({ a: z.number(), b: z.string() }).optional(),
    when: z.date().optional(),
    name: z.string(),
  })

  it('maps APP_PAYMENT__TIMEOUT_MS to payment.timeoutMs and coerces each value to the schema type', async () => {
    const config = await track(
      createConfig({
        schema,
        sources: [
          env({
            prefix: 'APP_',
            env: {
              APP_PAYMENT__TIMEOUT_MS: '2500',
              APP_PAYMENT__ENABLED: 'yes',
              APP_PAYMENT__MODE: 'test',
              APP_LIMITS__BIG: '9007199254740993',
              APP_LIMITS__RATIO: ' 0.25 ',
              APP_LIMITS__TAGS: '["a","b"]',
              APP_LIMITS__PORTS: '80, 443',
              APP_RETRY__BACKOFF__MAX_DELAY: '30000',
              APP_LABELS__TEAM_NAME: 'payments',
              APP_EXTRA: '{"a":1,"b":"x"}',
              APP_WHEN: '2026-01-02T03:04:05Z',
              APP_NAME: '12345',
              APP_UNRELATED__THING: 'ignored',
              OTHER_NAME: 'not mine',
            },
          }),
        ],
      }),
    )
    expect(config.get()).toEqual({
      payment: { timeoutMs: 2500, enabled: true, mode: 'test' },
      limits: { big: 9007199254740993n, ratio: 0.25, tags: ['a', 'b'], ports: [80, 443] },
      retry: { backoff: { max_delay: 30000 } },
      labels: { teamName: 'payments' },
      extra: { a: 1, b: 'x' },
      when: new Date('2026-01-02T03:04:05Z'),
      name: '12345',
    })
  })

  it('a value that cannot be coerced fails the start with the variable named', async () => {
    const error = await createConfig({
      schema,
      sources: [
        env({
          prefix: 'APP_',
          env: {
            APP_PAYMENT__TIMEOUT_MS: 'soon',
            APP_PAYMENT__ENABLED: 'true',
            APP_PAYMENT__MODE: 'test',
            APP_NAME: 'x',
            APP_LIMITS: '{"big":"1","ratio":1,"tags":[],"ports":[]}',
            APP_RETRY: '{"backoff":{"max_delay":1}}',
            APP_LABELS: '{}',
          },
        }),
      ],
    }).catch((e: unknown) => e)
    expect(ConfigError.is(error)).toBe(true)
    const e = error as ConfigError
    expect(e.code).toBe('CONFIG_INVALID')
    expect(e.issues).toEqual([
      expect.objectContaining({ path: 'payment.timeoutMs', source: 'env:APP_', key: 'APP_PAYMENT__TIMEOUT_MS' }),
      expect.objectContaining({ path: 'limits.big', source: 'env:APP_', key: 'APP_LIMITS' }),
    ])
    expect(e.message).toContain(
      'payment.timeoutMs: Invalid input: expected number, received string (from env:APP_ APP_PAYMENT__TIMEOUT_MS)',
    )
  })
})
