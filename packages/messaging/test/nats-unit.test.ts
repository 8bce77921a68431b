import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { ErrorCode, type Msg, type NatsConnection, NatsError, headers as natsHeaders } from 'nats'
import { describe, expect, it } from 'vitest'
import {
  checkNatsVersion,
  checkSubject,
  consumerNameFor,
  createTransport,
  installedNatsVersion,
  natsOptionsFromUrl,
  packageVersionAbove,
  parseNatsOptions,
  safeName,
  streamNameFor,
} from '../src/adapters/nats.js'
import { pubAckInbox } from '../src/adapters/nats-pubacks.js'

const invalid = (fn: () => unknown) => {
  try {
    fn()
  } catch (error) {
    return error as { code: string; message: string; details: string[] }
  }
  throw new Error('expected a MessagingError')
}

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

describe('stream and consumer names', () => {
  it('keeps names JetStream accepts as they are', () => {
    expect(streamNameFor('orders')).toBe('BP_orders')
    expect(streamNameFor('orders', 'APP_')).toBe('APP_orders')
    expect(consumerNameFor('billing', 'orders.created', true)).toBe('billing')
  })

  it('replaces what JetStream refuses and adds a hash of the original, so names stay distinct', () => {
    const dotted = streamNameFor('orders.created')
    expect(dotted).toMatch(/^BP_orders_created_[0-9a-f]{8}$/)
    expect(streamNameFor('orders_created')).toBe('BP_orders_created')
    expect(dotted).not.toBe(streamNameFor('orders_created'))
    expect(safeName('a b/c\\d*e>f\u0000')).toMatch(/^a_b_c_d_e_f__[0-9a-f]{8}$/)
    expect(safeName('x.y')).toBe(safeName('x.y'))
  })

  it('names a group consumer after group and topic on a stream shared by several topics', () => {
    const name = consumerNameFor('billing', 'orders.created', false)
    expect(name).toMatch(/^billing_orders_created_[0-9a-f]{8}$/)
    expect(name).not.toBe(consumerNameFor('billing', 'orders.paid', false))
  })

  it('caps long names at 200 characters', () => {
    const long = safeName('t'.repeat(500))
    expect(long.length).toBe(200)
    expect(long).not.toBe(safeName(`${'t'.repeat(499)}u`))
  })

  it('accepts only subjects a message can be published to', () => {
    expect(() => checkSubject('orders.created')).not.toThrow()
    for (const bad of ['', 'orders.*', 'orders.>', 'a..b', 'has space', '.lead']) {
      expect(() => checkSubject(bad), bad).toThrow(/not a NATS subject/)
    }
  })
})

describe('nats client version', () => {
  it('accepts ^2.19', () => {
    for (const v of ['2.19.0', '2.29.3', '2.100.1']) expect(() => checkNatsVersion(v)).not.toThrow()
    expect(() => checkNatsVersion(undefined)).not.toThrow()
  })

  it('refuses older, newer-major and prerelease versions, naming installed and supported', () => {
    for (const v of ['2.18.9', '1.30.0', '3.0.0', '2.20.0-rc.1', 'garbage']) {
      const error = invalid(() => checkNatsVersion(v))
      expect(error.code).toBe('MESSAGING_CLIENT_UNSUPPORTED')
      expect(error.message).toContain(v)
      expect(error.message).toContain('^2.19.0')
    }
  })

  it('reads the installed version from the package the adapter resolves', () => {
    const require = createRequire(import.meta.url)
    const entry = require.resolve('nats')
    const real = JSON.parse(readFileSync(join(dirname(entry), 'package.json'), 'utf8')) as { version: string }
    expect(installedNatsVersion()).toBe(real.version)
  })

  it('walks up from the entry file past package.json files of other names', () => {
    const files: Record<string, string> = {
      '/r/node_modules/nats/lib/src/package.json': '{"type":"commonjs"}',
      '/r/node_modules/nats/package.json': '{"name":"nats","version":"2.19.1"}',
    }
    const read = ((path: string) => {
      const text = files[path]
      if (text === undefined) throw new Error('ENOENT')
      return text
    }) as unknown as typeof readFileSync
    expect(packageVersionAbove('/r/node_modules/nats/lib/src/mod.js', 'nats', read)).toBe('2.19.1')
    expect(packageVersionAbove('/elsewhere/x.js', 'nats', read)).toBeUndefined()
  })
})

describe('JetStream PubAcks on one inbox', () => {
  /** A connection that records publishes and lets the test answer them on the inbox subscription. */
  function fakeConnection() {
    const sent: { subject: string; reply: string }[] = []
    let answer: ((error: NatsError | null, msg: Msg) => void) | undefined
    const nc = {
      subscribe(_subject: string, opts: { callback: (error: NatsError | null, msg: Msg) => void }) {
        answer = opts.callback
        return { isClosed: () => false }
      },
      publish(subject: string, _data: Uint8Array, opts: { reply: string }) {
        if (subject === 'closed') throw NatsError.errorForCode(ErrorCode.ConnectionClosed)
        sent.push({ subject, reply: opts.reply })
      },
    } as unknown as NatsConnection
    const reply = (to: string, body: string, status?: number) => {
      const h = status === undefined ? undefined : natsHeaders(status, 'No Responders')
      answer?.(null, {
        subject: to,
        data: new TextEncoder().encode(body),
        headers: h,
        json: () => JSON.parse(body),
      } as Msg)
    }
    return { nc, sent, reply }
  }
  const message = (subject: string) => ({ subject, data: new Uint8Array(), headers: natsHeaders() })
  const outcome = (p: Promise<void>) =>
    p.then(
      () => 'stored',
      (e: NatsError) => e.code,
    )

  it('settles each message with its own answer: stored, no stream (503), an API error, or a timeout', async () => {
    const { nc, sent, reply } = fakeConnection()
    const group = pubAckInbox(nc).publish(['a', 'b', 'c', 'd', 'closed'].map(message), 50)
    expect(sent.map((s) => s.subject)).toEqual(['a', 'b', 'c', 'd'])
    expect(new Set(sent.map((s) => s.reply)).size).toBe(4)
    reply(sent[1]?.reply as string, '', 503)
    reply(sent[0]?.reply as string, '{"stream":"S","seq":1}')
    reply(
      sent[2]?.reply as string,
      '{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}',
    )
    reply(sent[0]?.reply as string, '{"stream":"S","seq":1}') // a late duplicate answer is ignored
    const results = await Promise.all(group.results.map(outcome))
    expect(results).toEqual(['stored', '503', '400', 'TIMEOUT', 'CONNECTION_CLOSED'])
    const apiError = await group.results[2]?.catch((e: NatsError) => e)
    expect(apiError).toMatchObject({ api_error: { err_code: 10060 } })
  })

  it('forgets what it no longer waits for once cancelled', async () => {
    const { nc, sent, reply } = fakeConnection()
    const group = pubAckInbox(nc).publish([message('a')], 20)
    let settled = false
    void group.results[0]?.finally(() => {
      settled = true
    })
    group.cancel()
    reply(sent[0]?.reply as string, '{"stream":"S","seq":1}')
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(settled).toBe(false)
  })
})
