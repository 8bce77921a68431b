/** Type tests of the public generics: what createConfig infers from the zod schema. tsc checks them; nothing runs. */
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import { type DiscoverOptions, type EtcdSourceOptions, etcd, type RegisterOptions } from '../src/etcd/index.js'
import {
  type ChangeEvent,
  type Config,
  type ConfigError,
  type ConfigSource,
  type CreateConfigOptions,
  createConfig,
  type DeepReadonly,
  type Duration,
  file,
  memory,
  type RetryOptions,
  type StaleEvent,
  secret,
} from '../src/index.js'

const schema = z.object({
  service: z.string().default('orders'),
  payment: z.object({
    timeoutMs: z.number().int().default(5000),
    provider: z.enum(['stripe', 'adyen']).default('stripe'),
    apiKey: secret(z.string()).optional(),
  }),
  db: z.object({ url: z.string() }).optional(),
  hosts: z.array(z.string()).default([]),
})
type App = z.output<typeof schema>

declare const config: Config<App>

describe('createConfig', () => {
  it('infers the configuration type from the schema', () => {
    expectTypeOf(createConfig({ schema })).toEqualTypeOf<Promise<Config<App>>>()
    expectTypeOf(createConfig({ schema: z.object({ port: z.number() }) })).resolves.toEqualTypeOf<
      Config<{ port: number }>
    >()
    // @ts-expect-error: the schema is required
    createConfig({ sources: [memory()] })
    // @ts-expect-error: not a zod schema
    createConfig({ schema: { port: 'number' } })
  })

  it('takes time options as milliseconds or duration strings, and the one retry shape', () => {
    const options: CreateConfigOptions<typeof schema> = {
      schema,
      sources: [file('config.yaml', { settle: '50ms' }), memory({})],
      startTimeout: '5s',
      debounce: 100,
      maxDebounce: '1s',
      retry: { maxAttempts: 10, initialDelay: '500ms', maxDelay: '30s', factor: 2, jitter: 'equal' },
    }
    expectTypeOf(options.startTimeout).toEqualTypeOf<Duration | undefined>()
    expectTypeOf<NonNullable<CreateConfigOptions<typeof schema>['retry']>>().toExtend<RetryOptions>()
    // @ts-expect-error: a duration is a number or a string
    createConfig({ schema, debounce: true })
    // @ts-expect-error: jitter is 'full', 'equal', 'none' or a boolean
    createConfig({ schema, retry: { jitter: 'some' } })
    // @ts-expect-error: not an option
    createConfig({ schema, debounceSeconds: 1 })
  })

  it('still compiles with the deprecated names', () => {
    expectTypeOf({
      schema,
      debounceMs: 100,
      maxDebounceMs: 1_000,
      retry: { minDelayMs: 10, maxDelayMs: 100 },
    }).toExtend<CreateConfigOptions<typeof schema>>()
    expectTypeOf({
      prefix: '/config/app/',
      timeoutMs: 500,
      minRetryMs: 10,
      maxRetryMs: 100,
    }).toExtend<EtcdSourceOptions>()
    expectTypeOf({ service: 's', instance: 'i', address: 'a', timeoutMs: 500 }).toExtend<RegisterOptions>()
    expectTypeOf({ timeoutMs: 500 }).toExtend<DiscoverOptions>()
    // @ts-expect-error: the deprecated names are still numbers of milliseconds only
    file('config.yaml', { settleMs: '50ms' })
  })
})

describe('the etcd options', () => {
  it('take durations and the retry shape', () => {
    expectTypeOf(
      etcd({ prefix: '/config/app/', timeout: '2s', retry: { initialDelay: 100, maxDelay: '10s' } }),
    ).toEqualTypeOf<ConfigSource>()
    expectTypeOf({ service: 's', instance: 'i', address: 'a', timeout: '1s', ttl: '10s' }).toExtend<RegisterOptions>()
    // @ts-expect-error: the old flat retry options are not part of the retry shape
    etcd({ prefix: '/config/app/', retry: { minRetryMs: 10 } })
  })
})

describe('config.get', () => {
  it('get() is the whole configuration, read-only', () => {
    expectTypeOf(config.get()).toEqualTypeOf<DeepReadonly<App>>()
    expectTypeOf(config.get().hosts).toEqualTypeOf<readonly string[]>()
    // @ts-expect-error: served objects are read-only
    config.get().payment.timeoutMs = 1
  })

  it('get(path) is the type at that path', () => {
    expectTypeOf(config.get('service')).toEqualTypeOf<string>()
    expectTypeOf(config.get('payment.timeoutMs')).toEqualTypeOf<number>()
    expectTypeOf(config.get('payment.provider')).toEqualTypeOf<'stripe' | 'adyen'>()
    expectTypeOf(config.get('payment.apiKey')).toEqualTypeOf<string | undefined>()
    expectTypeOf(config.get('db.url')).toEqualTypeOf<string | undefined>()
    expectTypeOf(config.get('payment')).toEqualTypeOf<DeepReadonly<App['payment']>>()
    // @ts-expect-error: not a path of the schema
    config.get('payment.nope')
    // @ts-expect-error: paths do not descend into arrays
    config.get('hosts.0')
  })
})

describe('listeners', () => {
  it('watch(path) gets the values at the path and the change event', () => {
    config.watch('payment.timeoutMs', (next, prev, event) => {
      expectTypeOf(next).toEqualTypeOf<number>()
      expectTypeOf(prev).toEqualTypeOf<number>()
      expectTypeOf(event).toEqualTypeOf<ChangeEvent<App>>()
    })
    config.watch('payment', (next) => {
      expectTypeOf(next.provider).toEqualTypeOf<'stripe' | 'adyen'>()
    })
    expectTypeOf(config.watch('service', () => {})).toEqualTypeOf<() => void>()
    // @ts-expect-error: not a path of the schema
    config.watch('payment.nope', () => {})
    // @ts-expect-error: the listener gets the value at its path, a number here
    config.watch('payment.timeoutMs', (next: string) => next)
  })

  it('each event has its own payload', () => {
    config.on('change', (event) => {
      expectTypeOf(event.next).toEqualTypeOf<DeepReadonly<App>>()
      expectTypeOf(event.prev.payment.timeoutMs).toEqualTypeOf<number>()
      expectTypeOf(event.revision).toEqualTypeOf<number | undefined>()
    })
    config.on('invalid', (error) => expectTypeOf(error).toEqualTypeOf<ConfigError>())
    config.once('error', (error) => expectTypeOf(error.code).toEqualTypeOf<ConfigError['code']>())
    config.on('stale', (event) => expectTypeOf(event).toEqualTypeOf<StaleEvent>())
    // @ts-expect-error: no such event
    config.on('changed', () => {})
    // @ts-expect-error: a change listener gets a ChangeEvent, not a ConfigError
    config.on('change', (error: ConfigError) => error)
  })
})
