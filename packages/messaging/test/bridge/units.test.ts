/** biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${ENV} references */
/** The bridge's parts on their own: Retry-After, signatures, the SSRF policy, the config file, the file store, the CLI. */
import { createHmac } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { main } from '../../src/bridge/cli.js'
import {
  type BridgeError,
  fileStore,
  loadBridgeConfig,
  parseRetryAfter,
  signWebhookBody,
  verifyWebhookSignature,
} from '../../src/bridge/index.js'
import { createWebhookPolicy } from '../../src/bridge/ssrf.js'
import { until } from './helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'bridge-units-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('Retry-After and signatures', () => {
  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('120')).toBe(120_000)
    expect(parseRetryAfter(' 0 ')).toBe(0)
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000)
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('soon')).toBeUndefined()
    expect(parseRetryAfter(undefined)).toBeUndefined()
    expect(parseRetryAfter(['5', '7'])).toBe(5_000)
  })

  it('signs the exact body with HMAC-SHA256 and verifies in constant time', () => {
    const body = Buffer.from('{"a":1}')
    const signature = signWebhookBody('secret', body)
    expect(signature).toBe(`sha256=${createHmac('sha256', 'secret').update('{"a":1}').digest('hex')}`)
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/)
    expect(verifyWebhookSignature('secret', body, signature)).toBe(true)
    expect(verifyWebhookSignature('secret', '{"a":1}', signature)).toBe(true)
    expect(verifyWebhookSignature('secret', '{"a":2}', signature)).toBe(false)
    expect(verifyWebhookSignature('other', body, signature)).toBe(false)
    expect(verifyWebhookSignature('secret', body, undefined)).toBe(false)
    expect(verifyWebhookSignature('secret', body, 'sha256=00')).toBe(false)
  })
})

describe('webhook policy (SSRF)', () => {
  const lookup = (policy: ReturnType<typeof createWebhookPolicy>, host: string) =>
    new Promise<{ error?: Error; addresses?: { address: string }[] }>((resolve) =>
      policy.lookup(host, { all: true }, (error, addresses) =>
        resolve(error ? { error } : { addresses: addresses as unknown as { address: string }[] }),
      ),
    )

  it('without an allowlist: public addresses only', async () => {
    const policy = createWebhookPolicy([])
    await expect(policy.check('http://93.184.216.34/hook')).resolves.toBeInstanceOf(URL)
    for (const url of [
      'http://127.0.0.1/',
      'http://10.0.0.5/',
      'http://192.168.1.1/',
      'http://[::1]/',
      'http://[fd12::1]/',
      'http://100.64.0.1/',
      'http://localhost:9/',
    ]) {
      await expect(policy.check(url), url).rejects.toMatchObject({ code: 'WEBHOOK_URL_NOT_ALLOWED' })
    }
    expect((await lookup(policy, 'localhost')).error?.message).toMatch(/refused to connect to localhost/)
  })

  it('link-local, metadata and "this host" are refused even when a network around them is allowed', async () => {
    const policy = createWebhookPolicy(['0.0.0.0/0', '::/0'])
    for (const url of [
      'http://169.254.169.254/',
      'http://[::ffff:a9fe:a9fe]/',
      'http://[fe80::1%25eth0]/',
      'http://[fd00:ec2::254]/',
      'http://100.100.100.200/',
      'http://0.0.0.0/',
      'http://224.0.0.1/',
    ]) {
      await expect(
        policy.check(url).catch((e: BridgeError) => e.code),
        url,
      ).resolves.toMatch(/WEBHOOK_URL_NOT_ALLOWED|INVALID_REQUEST/)
    }
    expect(() => policy.checkLiteral('169.254.169.254')).toThrow(/link-local/)
  })

  it('an allowlist of hosts and networks: only those; named hosts may be private', async () => {
    const policy = createWebhookPolicy(['127.0.0.1', '*.example.internal', 'localhost', '10.20.0.0/16'])
    await expect(policy.check('http://127.0.0.1:8080/x')).resolves.toBeInstanceOf(URL)
    await expect(policy.check('http://10.20.3.4/x')).resolves.toBeInstanceOf(URL)
    await expect(policy.check('http://localhost:8080/x')).resolves.toBeInstanceOf(URL)
    await expect(policy.check('http://10.21.0.1/x')).rejects.toThrow(/not in webhooks.allow/)
    await expect(policy.check('http://93.184.216.34/x')).rejects.toThrow(/not in webhooks.allow/)
    const names = createWebhookPolicy(['*.example.internal'])
    expect(() => names.checkStatic('http://example.com/x')).toThrow(/host example.com is not in webhooks.allow/)
    expect(() => names.checkStatic('http://a.example.internal/x')).not.toThrow()
    const only = createWebhookPolicy(['127.0.0.1'])
    const resolved = await lookup(only, 'localhost')
    // Whatever localhost resolves to, the connection may only go to the allowed address.
    expect(resolved.addresses?.map((a) => a.address)).toEqual(['127.0.0.1'])
    expect(() => createWebhookPolicy(['10.0.0.0/40'])).toThrow(/not a network/)
    expect(() => createWebhookPolicy(['bad host!'])).toThrow(/not a host/)
  })
})

describe('config file', () => {
  it('reads YAML, fills ${ENV}, applies BACKPLANE_BRIDGE_* overrides, puts the state file beside it', async () => {
    const file = join(dir, 'bridge.yaml')
    writeFileSync(
      file,
      [
        'listen: { host: 0.0.0.0, port: 9000 }',
        'brokers:',
        '  http: memory://',
        '  kafka: { url: "kafka://${KAFKA:-127.0.0.1:9092}", kafka: { clientId: bridge } }',
        'auth:',
        '  keys:',
        '    - { id: ci, key: "${CI_KEY}", publish: ["http.*"], subscribe: ["*"] }',
        'webhooks: { allow: [127.0.0.1], retry: { maxAttempts: 4 } }',
        'subscriptions:',
        '  - { id: audit, topic: http.audit, url: "http://127.0.0.1:9/hook", secret: "$${not-a-variable}" }',
        'routes:',
        '  - { source: http.orders, destinations: ["kafka:orders"], filter: { type: order.* } }',
      ].join('\n'),
    )
    const config = await loadBridgeConfig(file, {
      CI_KEY: 'ci-key-0123456789abcdef',
      BACKPLANE_BRIDGE_PORT: '9100',
      BACKPLANE_BRIDGE_BROKER_NATS: 'nats://127.0.0.1:4222',
    })
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 9100 })
    expect(config.options.brokers).toEqual({
      http: 'memory://',
      kafka: { url: 'kafka://127.0.0.1:9092', kafka: { clientId: 'bridge' } },
      nats: 'nats://127.0.0.1:4222',
    })
    expect(config.options.auth?.keys?.[0]?.key).toBe('ci-key-0123456789abcdef')
    expect(config.options.subscriptions?.[0]?.secret).toBe('${not-a-variable}')
    expect(config.options.store).toEqual({ file: join(dir, 'backplane-bridge.state.json') })
    const etcd = await loadBridgeConfig(file, {
      CI_KEY: 'ci-key-0123456789abcdef',
      BACKPLANE_BRIDGE_STORE: 'etcd://h1:2379,h2:2379',
    })
    expect(etcd.options.store).toEqual({ etcd: { endpoints: ['http://h1:2379', 'http://h2:2379'] } })
  })

  it('says what is wrong: missing variables, bad YAML, unknown or invalid fields', async () => {
    const file = join(dir, 'bad.yaml')
    writeFileSync(file, 'brokers: { http: memory:// }\nauth: { keys: [{ id: a, key: "${NOPE}" }] }\n')
    await expect(loadBridgeConfig(file, {})).rejects.toThrow(/environment variables that are not set: NOPE/)
    writeFileSync(file, 'brokers: [\n')
    await expect(loadBridgeConfig(file, {})).rejects.toThrow(/not valid YAML/)
    writeFileSync(file, 'brokers: { http: memory:// }\nlimits: { bodyBytes: lots }\nwebhook: {}\n')
    const error = (await loadBridgeConfig(file, {}).catch((e: unknown) => e)) as BridgeError
    expect(error.code).toBe('BRIDGE_INVALID_CONFIG')
    expect(error.details).toEqual(
      expect.arrayContaining([expect.stringContaining('limits.bodyBytes'), expect.stringContaining('"webhook"')]),
    )
    await expect(loadBridgeConfig(join(dir, 'missing.yaml'), {})).rejects.toThrow(/cannot read the config file/)
  })
})

describe('file store', () => {
  it('writes atomically (0600, no temporary files left), survives a new instance, refuses a corrupt file', async () => {
    const path = join(dir, 'state', 'bridge.json')
    const a = fileStore(path)
    expect(await a.load()).toEqual({ subscriptions: [], routes: [] })
    const sub = { id: 's1', topic: 't', url: 'http://127.0.0.1/', secret: 'x', createdAt: new Date().toISOString() }
    await Promise.all([
      a.put('subscription', sub),
      a.put('route', { id: 'r1', source: 'a', destinations: ['b'], createdAt: sub.createdAt }),
      a.put('route', { id: 'r2', source: 'a', destinations: ['c'], createdAt: sub.createdAt }),
    ])
    await a.delete('route', 'r2')
    await a.close()
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readdirSync(join(dir, 'state'))).toEqual(['bridge.json'])
    const b = fileStore(path)
    expect(await b.load()).toEqual({ subscriptions: [sub], routes: [expect.objectContaining({ id: 'r1' })] })
    writeFileSync(path, readFileSync(path, 'utf8').slice(0, 20))
    await expect(fileStore(path).load()).rejects.toMatchObject({ code: 'BRIDGE_STORE_CORRUPT' })
  })
})

describe('backplane-bridge (CLI)', () => {
  function capture() {
    const chunks: string[] = []
    return Object.assign(
      new Writable({
        write(chunk, _encoding, callback) {
          chunks.push(String(chunk))
          callback()
        },
      }),
      { text: () => chunks.join('') },
    )
  }
  const run = (argv: string[], signal = new AbortController().signal) => {
    const stdout = capture()
    const stderr = capture()
    return { stdout, stderr, code: main(argv, { stdout, stderr, env: {}, signal }) }
  }

  it('prints its usage; refuses to run without --config or with a bad config', async () => {
    const help = run(['--help'])
    expect(await help.code).toBe(0)
    expect(help.stdout.text()).toContain('usage: backplane-bridge --config <file>')
    expect(await run([]).code).toBe(2)
    expect(await run(['--config', join(dir, 'nope.yaml')]).code).toBe(2)
    const unknown = run(['--frobnicate'])
    expect(await unknown.code).toBe(2)
    expect(unknown.stderr.text()).toContain("Unknown option '--frobnicate'")
  })

  it('refuses a non-loopback address without API keys unless --insecure', async () => {
    const file = join(dir, 'open.yaml')
    writeFileSync(file, 'brokers: { http: memory:// }\nstore: false\n')
    const refused = run(['--config', file, '--host', '0.0.0.0', '--port', '0'])
    expect(await refused.code).toBe(2)
    expect(refused.stderr.text()).toContain('refusing to listen on 0.0.0.0 without API keys')
    const stop = new AbortController()
    const insecure = run(['--config', file, '--host', '0.0.0.0', '--port', '0', '--insecure'], stop.signal)
    await until(() => insecure.stderr.text().includes('"msg":"ready"'), 5_000, 'the server')
    expect(insecure.stderr.text()).toContain('every request is accepted')
    stop.abort()
    expect(await insecure.code).toBe(0)
  })

  it('serves the bridge until stopped, then stops cleanly', async () => {
    const file = join(dir, 'run.yaml')
    writeFileSync(
      file,
      'brokers: { http: memory://cli }\nauth: { keys: [{ id: k, key: cli-key-0123456789abcdef, publish: ["*"] }] }\nstore: { file: cli-state.json }\n',
    )
    const stop = new AbortController()
    const server = run(['--config', file, '--port', '0'], stop.signal)
    await until(() => server.stderr.text().includes('"msg":"ready"'), 5_000, 'the server')
    const url = /"url":"([^"]+)"/.exec(server.stderr.text())?.[1] as string
    expect((await fetch(`${url}/readyz`)).status).toBe(200)
    const published = await fetch(`${url}/v1/topics/cli.test`, {
      method: 'POST',
      headers: { authorization: 'Bearer cli-key-0123456789abcdef', 'content-type': 'application/json' },
      body: '{"from":"cli"}',
    })
    expect(published.status).toBe(202)
    stop.abort()
    expect(await server.code).toBe(0)
    expect(server.stderr.text()).toContain('"msg":"stopped"')
  })
})
