import { describe, expect, it, vi } from 'vitest'
import { z } from 'zod'
import {
  brandError,
  deferred,
  deprecate,
  hasBrand,
  isLogger,
  isModuleMissing,
  issueLines,
  loadPeer,
  parseWith,
  renameOptions,
  silentLogger,
  sleep,
  withTimeout,
} from '../src/index.js'

describe('parseWith', () => {
  const schema = z.strictObject({ size: z.number(), name: z.string() })
  const fail = (message: string, details: string[]) => Object.assign(new Error(message), { details })

  it('returns the parsed value', () => {
    expect(parseWith(schema, { size: 1, name: 'a' }, fail, 'thing')).toEqual({ size: 1, name: 'a' })
  })

  it('lists every problem in one typed error', () => {
    const error = (() => {
      try {
        parseWith(schema, { size: 'x', extra: 1 }, fail, 'thing')
      } catch (e) {
        return e as Error & { details: string[] }
      }
    })()
    expect(error?.details).toEqual([
      'size: Invalid input: expected number, received string',
      'name: required',
      '(options): unknown option(s) "extra"',
    ])
    expect(error?.message).toMatch(/^invalid thing options: size: /)
  })

  it('names the root with the given word', () => {
    expect(issueLines(z.number().safeParse('x').error?.issues ?? [], '(data)')[0]).toMatch(/^\(data\): /)
  })
})

describe('brands', () => {
  it('recognises a branded error across copies and nothing else', () => {
    const error = new Error('x')
    brandError(error, '@backplane/test/E')
    expect(hasBrand(error, '@backplane/test/E')).toBe(true)
    expect(hasBrand(error, '@backplane/test/F')).toBe(false)
    expect(hasBrand(new Error('y'), '@backplane/test/E')).toBe(false)
    expect(hasBrand(null, '@backplane/test/E')).toBe(false)
    expect(Object.keys(error)).toEqual([])
  })
})

describe('loggers', () => {
  it('accepts anything with the four methods', () => {
    expect(isLogger(silentLogger)).toBe(true)
    expect(isLogger(console)).toBe(true)
    expect(isLogger({ info() {} })).toBe(false)
    expect(isLogger('pino')).toBe(false)
  })
})

describe('timers', () => {
  it('sleep ends early when its signal aborts', async () => {
    const controller = new AbortController()
    const started = Date.now()
    const slept = sleep(10_000, controller.signal)
    controller.abort()
    await slept
    expect(Date.now() - started).toBeLessThan(1_000)
  })

  it('withTimeout rejects with the given error and swallows the late outcome', async () => {
    const never = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('late')), 30))
    await expect(withTimeout(never, 5, () => new Error('too slow'))).rejects.toThrow('too slow')
    await sleep(50)
    await expect(withTimeout(Promise.resolve(7), 1_000, () => new Error('no'))).resolves.toBe(7)
  })
})

describe('optional peers', () => {
  it('turns a missing module into the package error, and passes other failures through', async () => {
    const missing = () =>
      Promise.reject(Object.assign(new Error("Cannot find package 'etcd3'"), { code: 'ERR_MODULE_NOT_FOUND' }))
    await expect(loadPeer('etcd3', missing, () => new Error('npm install etcd3'))).rejects.toThrow('npm install etcd3')
    const inner = () =>
      Promise.reject(Object.assign(new Error("Cannot find module 'grpc'"), { code: 'MODULE_NOT_FOUND' }))
    await expect(loadPeer('etcd3', inner, () => new Error('npm install etcd3'))).rejects.toThrow("'grpc'")
    // An adapter needing two packages: either one missing is the peer missing.
    const second = () =>
      Promise.reject(
        Object.assign(new Error("Cannot find package '@nats-io/jetstream' imported from x"), {
          code: 'ERR_MODULE_NOT_FOUND',
        }),
      )
    await expect(
      loadPeer(['@nats-io/transport-node', '@nats-io/jetstream'], second, () => new Error('npm install both')),
    ).rejects.toThrow('npm install both')
    expect(isModuleMissing(new Error('other'))).toBe(false)
    const near = Object.assign(new Error("Cannot find package 'pg-protocol'"), { code: 'ERR_MODULE_NOT_FOUND' })
    expect(isModuleMissing(near, 'pg')).toBe(false)
    expect(
      isModuleMissing(Object.assign(new Error("Cannot find module 'pg/lib/x'"), { code: 'MODULE_NOT_FOUND' }), 'pg'),
    ).toBe(true)
    await expect(
      loadPeer(
        'zod',
        () => import('zod'),
        () => new Error('no'),
      ),
    ).resolves.toHaveProperty('z')
  })
})

describe('deprecations', () => {
  it('warns once per code and moves old option names to new ones', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const input = { closeTimeoutMs: 500, other: 1 }
      const out = renameOptions(input, [{ from: 'closeTimeoutMs', to: 'closeTimeout' }], 'createThing', 'TEST')
      expect(out).toEqual({ closeTimeout: 500, other: 1 })
      expect(input).toEqual({ closeTimeoutMs: 500, other: 1 })
      renameOptions(input, [{ from: 'closeTimeoutMs', to: 'closeTimeout' }], 'createThing', 'TEST')
      expect(warn).toHaveBeenCalledTimes(1)
      expect(String(warn.mock.calls[0]?.[0])).toContain('"closeTimeoutMs" is deprecated, use "closeTimeout"')
      expect(
        renameOptions(
          { closeTimeoutMs: 1, closeTimeout: 2 },
          [{ from: 'closeTimeoutMs', to: 'closeTimeout' }],
          'createThing',
          'TEST',
        ),
      ).toEqual({ closeTimeout: 2 })
      deprecate('TEST2', 'x')
      deprecate('TEST2', 'x')
      expect(warn).toHaveBeenCalledTimes(2)
    } finally {
      warn.mockRestore()
    }
  })
})

describe('deferred', () => {
  it('resolves its promise when resolve is called, not before', async () => {
    const d = deferred()
    let done = false
    void d.promise.then(() => {
      done = true
    })
    await Promise.resolve()
    expect(done).toBe(false)
    d.resolve()
    await d.promise
    expect(done).toBe(true)
  })
})
