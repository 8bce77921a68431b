/** The Kafka adapter's options and kafka:// URLs, checked without a Kafka (against a stub kafkajs). */
import { describe, expect, it, vi } from 'vitest'
import { createKafkaTransport, createTransport, optionsFromUrl } from '../../src/adapters/kafka/index.js'
import { parseKafkaOptions } from '../../src/adapters/kafka/options.js'
import { createBroker } from '../../src/index.js'
import { rejection } from './helpers.js'
import { StubKafka } from './stub-kafkajs.js'

vi.mock('kafkajs', async (importOriginal) => {
  const real = await importOriginal<{ default: typeof import('kafkajs') }>()
  const { StubKafka } = await import('./stub-kafkajs.js')
  return { ...real, default: { ...real.default, Kafka: StubKafka } }
})

describe('options', () => {
  it.each([
    [{}, /brokers: required/],
    [{ brokers: ['kafka-1'] }, /brokers\.0: expected "host:port"/],
    [{ brokers: ['h:9092'], sessionTimeout: 'soon' }, /sessionTimeout: expected a duration like 500ms/],
    [{ brokers: ['h:9092'], maxWaitTime: 0 }, /maxWaitTime: expected a duration at least 1 ms/],
    [{ brokers: ['h:9092'], sesionTimeout: 6000 }, /unknown option\(s\) "sesionTimeout"; expected brokers, clientId/],
    [{ brokers: ['h:9092'], sessionTimeout: 6000, heartbeatInterval: 6000 }, /heartbeatInterval: expected less than/],
    [{ brokers: ['h:9092'], sasl: { mechanism: 'kerberos' } }, /sasl/],
    [{ brokers: ['h:9092'], ensureTopics: [{ topic: 't', numPartitions: 0 }] }, /ensureTopics\.0\.numPartitions/],
    [{ brokers: ['h:9092'], logger: console.log }, /logger: expected a logger/],
    [{ brokers: ['h:9092'], ssl: 'yes' }, /ssl: expected true, false or tls.connect options/],
    [{ brokers: ['h:9092'], groupId: 'billing' }, /groupId: expected a function \(group, topic\)/],
  ])('rejects %j, saying what was expected', async (options, message) => {
    const error = await rejection(createKafkaTransport(options as never))
    expect(error.code).toBe('MESSAGING_INVALID_OPTIONS')
    expect(error.message).toMatch(/^invalid kafka options: /)
    expect(error.message).toMatch(message)
  })

  it('checks the kafka options given to createBroker', async () => {
    const error = await rejection(createBroker('kafka://h:9092', { kafka: { sessionTimeout: -1 } }))
    expect(error).toMatchObject({ code: 'MESSAGING_INVALID_OPTIONS', message: expect.stringMatching(/sessionTimeout/) })
  })
})

describe('kafka:// URLs', () => {
  it('reads brokers, credentials and parameters', () => {
    const url = new URL(
      'kafka://svc:p%40ss@h1:9093?sasl=scram-sha-512&clientId=billing&sessionTimeout=6000&ssl=true&brokers=h2,h3:9094',
    )
    expect(optionsFromUrl(url)).toEqual({
      brokers: ['h1:9093', 'h2:9092', 'h3:9094'],
      clientId: 'billing',
      sessionTimeout: 6000,
      ssl: true,
      sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'p@ss' },
    })
  })

  it.each([
    ['kafka://h1', ['h1:9092']],
    ['kafka://h1,h2:9093', ['h1:9093', 'h2:9093']],
    ['kafka://[::1]:9093', ['[::1]:9093']],
  ])('%s has brokers %j', (url, brokers) => {
    expect(optionsFromUrl(new URL(url)).brokers).toEqual(brokers)
  })

  it.each([
    ['kafka://h:9092?retries=3', /unknown query parameter "retries": expected clientId, brokers/],
    ['kafka://h:9092?ssl=yes', /ssl=true or ssl=false/],
    ['kafka://h:9092?sasl=gssapi', /expected one of plain/],
    ['kafka://h:9092?sasl=plain', /needs a user and password/],
  ])('rejects %s', async (url, message) => {
    const error = await rejection(createBroker(url))
    expect(error.code).toBe('MESSAGING_INVALID_URL')
    expect(error.message).toMatch(message)
  })

  it('hides the password in errors', () => {
    expect(() => optionsFromUrl(new URL('kafka://u:secret@h:9092?nope=1'))).toThrow(/kafka:\/\/u:\*\*\*@h:9092/)
  })

  it('lets the options given in code win over the URL', async () => {
    const transport = await createTransport(new URL('kafka://h:9092?clientId=from-url'), {
      logger: undefined,
      settings: { clientId: 'from-code' },
    })
    expect(StubKafka.last.config).toMatchObject({ clientId: 'from-code', brokers: ['h:9092'] })
    await transport.close()
  })
})

describe('durations and the old option names', () => {
  it('reads every time option as ms or a duration string', () => {
    const options = parseKafkaOptions({
      brokers: ['h:9092'],
      connectionTimeout: '3s',
      requestTimeout: '1m',
      sessionTimeout: '30s',
      heartbeatInterval: '2.5s',
      maxWaitTime: '500ms',
      subscribeTimeout: '1m30s',
      commitInterval: 2000,
    })
    expect(options).toMatchObject({
      connectionTimeout: 3_000,
      requestTimeout: 60_000,
      sessionTimeout: 30_000,
      heartbeatInterval: 2_500,
      maxWaitTime: 500,
      subscribeTimeout: 90_000,
      commitInterval: 2_000,
    })
  })

  it('reads durations from the URL', () => {
    const options = parseKafkaOptions(optionsFromUrl(new URL('kafka://h:9092?sessionTimeout=10s&subscribeTimeout=2m')))
    expect(options).toMatchObject({ sessionTimeout: 10_000, subscribeTimeout: 120_000 })
  })

  it.each([
    ['maxWaitTimeInMs', 'maxWaitTime'],
    ['subscribeTimeoutMs', 'subscribeTimeout'],
    ['commitIntervalMs', 'commitInterval'],
  ])('still takes %s, as %s, with one deprecation warning', (old, current) => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      expect(parseKafkaOptions({ brokers: ['h:9092'], [old]: 1234 })).toMatchObject({ [current]: 1234 })
      expect(parseKafkaOptions({ brokers: ['h:9092'], [old]: 1234, [current]: '2s' })).toMatchObject({
        [current]: 2_000,
      })
      expect(warn).toHaveBeenCalledTimes(1)
      expect(String(warn.mock.calls[0]?.[0])).toContain(`"${old}" is deprecated, use "${current}"`)
      expect(warn.mock.calls[0]?.[1]).toMatchObject({ type: 'DeprecationWarning' })
    } finally {
      warn.mockRestore()
    }
  })

  it('still takes the old names in the URL, where the options given in code win', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      expect(optionsFromUrl(new URL('kafka://h:9092?subscribeTimeoutMs=5000'))).toMatchObject({
        subscribeTimeout: 5000,
      })
      expect(warn).toHaveBeenCalledTimes(1)
    } finally {
      warn.mockRestore()
    }
  })
})
