/** backplane-config against the shared etcd, each test under its own prefix. */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { etcdTestBed } from './helpers/bed.js'
import { cliRunner } from './helpers/cli.js'
import { requireEtcd, uniquePrefix, waitFor } from './helpers/env.js'

const endpoints = requireEtcd()
const schema = fileURLToPath(new URL('./fixtures/app-schema.mjs', import.meta.url))
const bed = etcdTestBed('cli')

const run = cliRunner(endpoints)

describe('backplane-config', () => {
  it('--help prints the usage', async () => {
    const { code, stdout } = await run(['--help'])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^Usage:\n {2}backplane-config get \[path\]/)
    expect((await run([])).code).toBe(2)
    const bad = await run(['frobnicate', '--prefix', '/x/'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('unknown command "frobnicate"')
  })

  it('--timeout takes a duration (2s, 1500ms) or milliseconds; anything else is a usage error', async () => {
    const prefix = uniquePrefix('cli-timeout')
    for (const timeout of ['2s', '1500ms', '3000']) {
      const got = await run(['get', '--prefix', prefix, '--timeout', timeout, '--schema', schema])
      expect(got.stderr).toBe('')
      expect(got.code).toBe(0)
    }
    const bad = await run(['get', '--prefix', prefix, '--timeout', 'soon'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--timeout "soon": expected a duration like 500ms')
  })

  it('put validates against the schema module before writing; get reads back; an invalid put writes nothing', async () => {
    const prefix = uniquePrefix('cli-put')
    const noSchema = await run(['put', 'payment.timeoutMs', '100', '--prefix', prefix])
    expect(noSchema.code).toBe(2)
    expect(noSchema.stderr).toContain('pass --schema FILE')

    // payment.provider is required: a put that leaves it missing is refused.
    const incomplete = await run(['put', 'payment.timeoutMs', '100', '--prefix', prefix, '--schema', schema])
    expect(incomplete.code).toBe(1)
    expect(incomplete.stderr).toContain('not published: the result would not satisfy the schema: payment.provider:')
    expect(await bed.client.getAll().prefix(prefix).keys()).toEqual([])

    // With a file layered under etcd that supplies it, the same put is fine.
    const yaml = join(bed.dir, 'base.yaml')
    writeFileSync(yaml, 'payment:\n  provider: stripe\n')
    const ok = await run(['put', 'payment.timeoutMs', '100', '--prefix', prefix, '--schema', schema, '--file', yaml])
    expect(ok.stderr).toBe('')
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(
      new RegExp(`^published r1 \\(put ${prefix}payment/timeoutMs; 1 key\\(s\\) changed; revision \\d+\\)\\n$`),
    )
    expect(await bed.client.get(`${prefix}payment/timeoutMs`).string()).toBe('100')

    const bad = await run([
      'put',
      '--prefix',
      prefix,
      '--schema',
      schema,
      '--file',
      yaml,
      'payment.timeoutMs',
      '--',
      '-1',
    ])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('payment.timeoutMs: Too small: expected number to be >0')
    expect(await bed.client.get(`${prefix}payment/timeoutMs`).string()).toBe('100')

    const obj = await run([
      'put',
      'payment',
      '{"provider":"adyen","apiKey":"sk-secret-1"}',
      '--prefix',
      prefix,
      '--schema',
      schema,
    ])
    expect(obj.code).toBe(0)
    const got = await run(['get', 'payment', '--prefix', prefix, '--schema', schema])
    expect(JSON.parse(got.stdout)).toEqual({ provider: 'adyen', apiKey: '[redacted]', timeoutMs: 100 })
    const shown = await run(['get', 'payment.apiKey', '--prefix', prefix, '--schema', schema, '--show-secrets'])
    expect(JSON.parse(shown.stdout)).toBe('sk-secret-1')
    const missing = await run(['get', 'payment.nothing', '--prefix', prefix])
    expect(missing.code).toBe(1)
  })

  it('list and delete (validated too)', async () => {
    const prefix = uniquePrefix('cli-list')
    await bed.client.put(`${prefix}payment/provider`).value('stripe')
    await bed.client.put(`${prefix}payment/apiKey`).value('sk-secret-2')
    await bed.client.put(`${prefix}service`).value('orders-eu')
    const listed = await run(['list', '--prefix', prefix, '--schema', schema])
    expect(listed.stdout).toBe(
      `${prefix}payment/apiKey = [redacted]\n${prefix}payment/provider = stripe\n${prefix}service = orders-eu\n`,
    )
    const asJson = await run(['list', '--prefix', prefix, '--json'])
    expect(JSON.parse(asJson.stdout)).toEqual({
      [`${prefix}payment/apiKey`]: 'sk-secret-2',
      [`${prefix}payment/provider`]: 'stripe',
      [`${prefix}service`]: 'orders-eu',
    })

    const refused = await run(['delete', 'payment', '--prefix', prefix, '--schema', schema])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain('payment.provider')
    const deleted = await run(['delete', 'service', '--prefix', prefix, '--schema', schema])
    expect(deleted.stdout).toMatch(/^published r1 \(deleted at .*service; 1 key\(s\) changed; /)
    expect(await bed.client.getAll().prefix(prefix).keys()).toEqual([
      `${prefix}payment/apiKey`,
      `${prefix}payment/provider`,
    ])
    const forced = await run(['delete', 'payment', '--prefix', prefix, '--no-validate'])
    expect(forced.stdout).toMatch(/^published r2 \(deleted at .*payment; 2 key\(s\) changed; /)
    expect(await bed.client.getAll().prefix(prefix).keys()).toEqual([])
  })

  it('apply, history, show, rollback: releases from the command line; --based-on a stale release exits 3', async () => {
    const prefix = uniquePrefix('cli-releases')
    const base = ['--prefix', prefix, '--schema', schema, '--author', 'ops@test']
    const v1 = join(bed.dir, 'v1.yaml')
    writeFileSync(v1, 'service: orders\npayment:\n  provider: stripe\n  timeoutMs: 100\n  apiKey: sk-one\n')
    const first = await run(['apply', v1, ...base, '-m', 'first'])
    expect(first.stderr).toBe('')
    expect(first.stdout).toMatch(/^published r1 \(applied .*v1\.yaml; 4 key\(s\) changed; revision \d+\)\n$/)
    const v2 = join(bed.dir, 'v2.yaml')
    writeFileSync(v2, 'service: orders\npayment:\n  provider: adyen\n  timeoutMs: 100\n  apiKey: sk-two\n')
    expect((await run(['apply', v2, ...base, '-m', 'move to adyen'])).stdout).toMatch(/^published r2 /)
    expect((await run(['apply', v2, ...base])).stdout).toBe(
      `nothing to publish: ${prefix} already holds these values (release r2)\n`,
    )

    const history = await run(['history', ...base])
    expect(history.stdout.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(
        /^r2 {5}\d{4}-\d\d-\d\dT[\d:.]+Z {2}ops@test {2}publish {2}2 change\(s\) {2}move to adyen$/,
      ),
      expect.stringMatching(/^r1 {5}.* {2}4 change\(s\) {2}first$/),
    ])
    const shown = await run(['show', 'r2', ...base])
    expect(shown.stdout).toContain('based on r1, read at revision')
    expect(shown.stdout).toContain('~ payment.provider: "stripe" -> "adyen"')
    expect(shown.stdout).toContain('~ payment.apiKey: "[redacted]" -> "[redacted]"')
    expect(shown.stdout).not.toContain('sk-')

    const stale = await run(['put', 'payment.timeoutMs', '300', ...base, '--based-on', 'r1'])
    expect(stale.code).toBe(3)
    expect(stale.stderr).toContain('not published: it was based on release r1, but the current release of')
    expect(await bed.client.get(`${prefix}payment/timeoutMs`).string()).toBe('100')

    const back = await run(['rollback', 'r1', ...base, '--based-on', 'r2'])
    expect(back.stdout).toMatch(/^published r3 \(rollback to r1; 2 key\(s\) changed; /)
    expect(await bed.client.get(`${prefix}payment/provider`).string()).toBe('stripe')
    expect(await bed.client.get(`${prefix}payment/apiKey`).string()).toBe('sk-one')
    const json = JSON.parse((await run(['history', ...base, '--json', '--limit', '1'])).stdout)
    expect(json).toEqual([
      expect.objectContaining({ id: 'r3', kind: 'rollback', restores: 'r1', message: 'rollback to r1' }),
    ])
    const unknown = await run(['rollback', 'r42', ...base])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('no release "r42" is kept')
  })

  it('diff compares a file with etcd', async () => {
    const prefix = uniquePrefix('cli-diff')
    await bed.client.put(`${prefix}payment/provider`).value('adyen')
    await bed.client.put(`${prefix}payment/timeoutMs`).value('100')
    await bed.client.put(`${prefix}service`).value('orders')
    const yaml = join(bed.dir, 'diff.yaml')
    writeFileSync(yaml, 'service: orders\npayment:\n  provider: stripe\n  apiKey: sk-file\n')
    const result = await run(['diff', yaml, '--prefix', prefix, '--schema', schema])
    expect(result.code).toBe(1)
    expect(result.stdout.split('\n').filter(Boolean).sort()).toEqual([
      '+ payment.timeoutMs: 100  (only in etcd)',
      '- payment.apiKey: "[redacted]"  (only in the file)',
      '~ payment.provider: "stripe" (file) -> "adyen" (etcd)',
    ])
    writeFileSync(yaml, 'service: orders\npayment:\n  provider: adyen\n  timeoutMs: 100\n')
    const same = await run(['diff', yaml, '--prefix', prefix, '--schema', schema])
    expect(same.code).toBe(0)
    expect(same.stdout).toContain('hold the same values')
  })

  it('watch prints changes live', async () => {
    const prefix = uniquePrefix('cli-watch')
    await bed.client.put(`${prefix}payment/timeoutMs`).value('100')
    const stop = new AbortController()
    const watching = run(['watch', '--prefix', prefix, '--schema', schema, '--count', '3'], stop.signal)
    // The watch starts after the list: keep writing until it has seen three changes.
    let n = 0
    const writer = setInterval(() => {
      n++
      void bed.client
        .put(`${prefix}payment/timeoutMs`)
        .value(String(100 + n))
        .exec() // a builder only runs when exec()/then() is called
    }, 50)
    try {
      const result = await Promise.race([
        watching,
        waitFor(() => false, 'watch to print three changes', 10_000).then(() => undefined),
      ])
      expect(result?.code).toBe(0)
      const lines = result?.stdout.trim().split('\n') ?? []
      expect(lines).toHaveLength(3)
      expect(lines[0]).toMatch(/^rev \d+ {2}payment\.timeoutMs: 10\d -> 10\d$/)
      expect(result?.stderr).toContain(`watching ${prefix} from revision`)
    } finally {
      clearInterval(writer)
      stop.abort()
    }
  })
})
