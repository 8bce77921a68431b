import { describe, expect, it } from 'vitest'
import { createTransport, natsOptionsFromUrl, parseNatsOptions } from '../../src/adapters/nats/index.js'
import { invalid } from './helpers.js'

describe('nats options', () => {
  it('fills in defaults: core NATS, reconnect forever, file streams', () => {
    expect(parseNatsOptions({ servers: ['127.0.0.1:4222'] })).toMatchObject({
      jetstream: false,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5_000,
      storage: 'file',
      streamPrefix: 'BP_',
      ackWait: 30_000,
      replicas: 1,
      brokerDedupe: false,
    })
  })

  it('reads durations as milliseconds or with a unit', () => {
    const opts = parseNatsOptions({
      servers: ['h'],
      ackWait: '45s',
      maxAge: '7d',
      duplicateWindow: 1500,
      timeout: '1.5s',
    })
    expect(opts).toMatchObject({ ackWait: 45_000, maxAge: 7 * 86_400_000, duplicateWindow: 1_500, timeout: 1_500 })
  })

  it('says what was expected, option by option', () => {
    const error = invalid(() =>
      parseNatsOptions({ servers: [], storage: 'disk', ackWait: 'soon', replicas: 9, bogus: 1, logger: 'yes' }),
    )
    expect(error.code).toBe('MESSAGING_INVALID_OPTIONS')
    expect(error.message).toContain('servers: expected at least one server')
    expect(error.message).toContain('storage: expected "file" or "memory"')
    expect(error.message).toContain('ackWait: expected a duration')
    expect(error.message).toContain('replicas: expected 1 to 5 replicas')
    expect(error.message).toContain('unknown option(s) "bogus"')
    expect(error.message).toContain('logger: expected a pino-shaped logger')
    expect(error.details.length).toBe(6)
  })

  it('refuses an ack wait under a second and stream names JetStream cannot hold', () => {
    expect(invalid(() => parseNatsOptions({ servers: ['h'], ackWait: 10 })).message).toContain(
      'ackWait: expected at least 1s',
    )
    expect(invalid(() => parseNatsOptions({ servers: ['h'], stream: 'orders.all' })).message).toContain(
      'stream: expected a stream name',
    )
  })
})

describe('nats URL', () => {
  it('reads hosts, credentials and parameters', () => {
    const url = new URL(
      'nats://alice:s%40cret@127.0.0.1:4222?jetstream=true&servers=h2:4222,h3:4222&name=api&maxAge=1h&replicas=3&tls=false',
    )
    expect(natsOptionsFromUrl(url)).toEqual({
      servers: ['127.0.0.1:4222', 'h2:4222', 'h3:4222'],
      user: 'alice',
      pass: 's@cret',
      jetstream: true,
      name: 'api',
      maxAge: '1h',
      replicas: 3,
      tls: false,
    })
  })

  it('treats a user without a password as a token, and a host list without ports as servers', () => {
    expect(natsOptionsFromUrl(new URL('nats://t0k3n@a,b'))).toEqual({ servers: ['a', 'b'], token: 't0k3n' })
  })

  it('refuses unknown parameters, naming the supported ones', () => {
    const error = invalid(() => natsOptionsFromUrl(new URL('nats://h?jetsteam=true')))
    expect(error.code).toBe('MESSAGING_INVALID_OPTIONS')
    expect(error.message).toContain('"jetsteam"')
    expect(error.message).toContain('jetstream')
  })

  it('refuses a path and a wrong boolean', async () => {
    expect(invalid(() => natsOptionsFromUrl(new URL('nats://h/orders'))).code).toBe('MESSAGING_INVALID_URL')
    await expect(
      createTransport(new URL('nats://127.0.0.1:1?jetstream=yes'), { logger: undefined, settings: {} }),
    ).rejects.toMatchObject({ code: 'MESSAGING_INVALID_OPTIONS', message: expect.stringContaining('jetstream') })
  })

  it('lets the nats broker option win over the URL, and validates before connecting', async () => {
    await expect(
      createTransport(new URL('nats://127.0.0.1:1?storage=memory'), {
        logger: undefined,
        settings: { storage: 'tape' },
      }),
    ).rejects.toMatchObject({ code: 'MESSAGING_INVALID_OPTIONS', message: expect.stringContaining('storage') })
  })

  it('fails with MESSAGING_CONNECTION_FAILED when nothing listens', async () => {
    await expect(
      createTransport(new URL('nats://127.0.0.1:1'), { logger: undefined, settings: { connectTimeout: 2000 } }),
    ).rejects.toMatchObject({ code: 'MESSAGING_CONNECTION_FAILED', message: expect.stringContaining('127.0.0.1:1') })
  })
})
