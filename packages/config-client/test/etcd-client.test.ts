/** Loading the optional etcd3 peer. */
import { describe, expect, it } from 'vitest'
import { loadEtcd3 } from '../src/etcd/index.js'
import { ConfigError } from '../src/index.js'
import { closeTrackedAfterEach } from './helpers/config.js'

closeTrackedAfterEach()

describe('errors', () => {
  it('without etcd3 installed the etcd subpath says: npm install etcd3', async () => {
    const missing = Object.assign(new Error("Cannot find package 'etcd3'"), { code: 'ERR_MODULE_NOT_FOUND' })
    const error = await loadEtcd3(() => Promise.reject(missing)).catch((e: unknown) => e)
    expect(ConfigError.is(error) && error.code).toBe('CONFIG_ETCD_MISSING')
    expect((error as Error).message).toContain('npm install etcd3')
    expect(typeof (await loadEtcd3()).Etcd3).toBe('function')
  })
})
