import { describe, expect, it } from 'vitest'
import { createBroker, MessagingError } from '../src/index.js'

describe('createBroker', () => {
  it.each([
    ['not a url', 'MESSAGING_INVALID_URL', /invalid broker URL "not a url": expected memory:\/\//],
    ['redis://localhost:6379', 'MESSAGING_INVALID_URL', /unknown broker "redis".*expected memory, kafka or nats/],
  ])('rejects %s', async (url, code, message) => {
    const error = await createBroker(url).catch((e: unknown) => e)
    expect(MessagingError.is(error)).toBe(true)
    expect(error).toMatchObject({ code, message: expect.stringMatching(message) })
  })

  it('rejects unknown and malformed broker, publish and subscribe options with what was expected', async () => {
    await expect(createBroker('memory://opts', { colour: 'red' } as never)).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('unknown option(s) "colour"'),
    })
    const broker = await createBroker('memory://opts')
    await expect(broker.publish('t', 1, { key: 42 } as never)).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('key: '),
    })
    // A header named __proto__ (JSON.parse makes one) would vanish in the objects headers travel in.
    for (const send of [
      () => broker.publish('t', 1, { headers: JSON.parse('{"__proto__":"x"}') }),
      () => broker.publishBatch('t', [{ data: 1, headers: JSON.parse('{"__PROTO__":"x"}') }]),
    ]) {
      await expect(send()).rejects.toMatchObject({
        code: 'MESSAGING_INVALID_OPTIONS',
        message: expect.stringContaining('headers: expected header names other than __proto__'),
      })
    }
    // Batch entries: the common shapes are checked without the schema, anything else still with it.
    await expect(broker.publishBatch('t', [{ data: 1, headers: { a: 1 } } as never])).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('headers.a: '),
    })
    await expect(broker.publishBatch('t', [{ data: 1, colour: 'red' } as never])).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('unknown option(s) "colour"'),
    })
    await expect(broker.publishBatch('t', [{ data: 1, id: '' }])).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('id: '),
    })
    await expect(broker.subscribe('t', () => {}, { retry: { maxAttempts: 0 } })).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('retry.maxAttempts'),
    })
    await expect(broker.subscribe('t', 'not a function' as never)).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
    })
    await broker.close()
  })
})

describe('broker URLs', () => {
  it('accepts a list of hosts with ports, which WHATWG URL alone refuses', async () => {
    const { parseBrokerUrl } = await import('../src/create-broker.js')
    const url = parseBrokerUrl('kafka://user:pw@h1:9092,h2:9093?clientId=orders')
    expect(decodeURIComponent(url.hostname)).toBe('h1:9092,h2:9093')
    expect(url.username).toBe('user')
    expect(url.searchParams.get('clientId')).toBe('orders')
    expect(decodeURIComponent(parseBrokerUrl('nats://a:4222,b:4222?jetstream=true').host)).toBe('a:4222,b:4222')
    expect(parseBrokerUrl('nats://127.0.0.1:4222').host).toBe('127.0.0.1:4222')
  })
})
