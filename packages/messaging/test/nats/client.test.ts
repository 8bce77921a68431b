import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  checkNatsClients,
  checkNatsVersion,
  installedNatsVersion,
  packageVersionAbove,
} from '../../src/adapters/nats/index.js'
import { invalid } from './helpers.js'

describe('nats client version', () => {
  it('accepts ^3.0 of both client packages', () => {
    for (const v of ['3.0.0', '3.4.0', '3.100.1']) {
      expect(() => checkNatsVersion(v, '@nats-io/transport-node')).not.toThrow()
      expect(() => checkNatsVersion(v, '@nats-io/jetstream')).not.toThrow()
    }
    expect(() => checkNatsVersion(undefined)).not.toThrow()
  })

  it('refuses older, newer-major and prerelease versions, naming the package, installed and supported', () => {
    for (const v of ['2.29.3', '1.30.0', '4.0.0', '3.1.0-rc.1', 'garbage']) {
      const error = invalid(() => checkNatsVersion(v, '@nats-io/jetstream'))
      expect(error.code).toBe('MESSAGING_CLIENT_UNSUPPORTED')
      expect(error.message).toContain(`@nats-io/jetstream package is version ${v}`)
      expect(error.message).toContain('^3.0.0')
      expect(error.message).toContain('npm install @nats-io/transport-node@^3 @nats-io/jetstream@^3')
    }
  })

  it('checks every client package the adapter imports', () => {
    const versions: Record<string, string> = { '@nats-io/transport-node': '3.4.0', '@nats-io/jetstream': '2.0.0' }
    const error = invalid(() => checkNatsClients((name) => versions[name]))
    expect(error.code).toBe('MESSAGING_CLIENT_UNSUPPORTED')
    expect(error.message).toContain('@nats-io/jetstream package is version 2.0.0')
    expect(() => checkNatsClients(() => '3.4.0')).not.toThrow()
  })

  it('reads the installed versions from the packages the adapter resolves', () => {
    const require = createRequire(import.meta.url)
    for (const name of ['@nats-io/transport-node', '@nats-io/jetstream'] as const) {
      const version = installedNatsVersion(name)
      expect(version).toMatch(/^3\./)
      // The entry sits somewhere below the package root: its package.json is the one with the name.
      const root = require.resolve(name).split(`${name}/`)[0]
      const real = JSON.parse(readFileSync(join(`${root}${name}`, 'package.json'), 'utf8')) as { version: string }
      expect(version).toBe(real.version)
    }
  })

  it('walks up from the entry file past package.json files of other names', () => {
    const files: Record<string, string> = {
      '/r/node_modules/@nats-io/jetstream/lib/package.json': '{"type":"commonjs"}',
      '/r/node_modules/@nats-io/jetstream/package.json': '{"name":"@nats-io/jetstream","version":"3.4.1"}',
    }
    const read = ((path: string) => {
      const text = files[path]
      if (text === undefined) throw new Error('ENOENT')
      return text
    }) as unknown as typeof readFileSync
    expect(packageVersionAbove('/r/node_modules/@nats-io/jetstream/lib/mod.js', '@nats-io/jetstream', read)).toBe(
      '3.4.1',
    )
    expect(packageVersionAbove('/elsewhere/x.js', '@nats-io/jetstream', read)).toBeUndefined()
  })
})
