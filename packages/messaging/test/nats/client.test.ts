import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkNatsVersion, installedNatsVersion, packageVersionAbove } from '../../src/adapters/nats/index.js'
import { invalid } from './helpers.js'

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
