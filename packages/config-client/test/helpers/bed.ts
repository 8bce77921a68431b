/**
 * What a test file against the shared etcd sets up: a raw client (for writing and reading etcd
 * directly), a temporary directory, and a list of things to close after each test. Everything
 * this process wrote (see cleanUp) goes when the file ends.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { cleanUp, requireEtcd } from './env.js'

export interface EtcdTestBed {
  readonly client: Etcd3
  readonly dir: string
  /** Closed after each test. */
  readonly open: { close(): Promise<void> }[]
}

export function etcdTestBed(name: string): EtcdTestBed {
  const endpoints = requireEtcd()
  const bed = { client: undefined as unknown as Etcd3, dir: '', open: [] as { close(): Promise<void> }[] }
  beforeAll(() => {
    bed.client = new Etcd3({ hosts: endpoints })
    bed.dir = mkdtempSync(join(tmpdir(), `config-client-${name}-`))
  })
  afterEach(async () => {
    await Promise.all(bed.open.splice(0).map((c) => c.close()))
  })
  afterAll(async () => {
    await cleanUp(bed.client)
    bed.client.close()
    rmSync(bed.dir, { recursive: true, force: true })
  })
  return bed
}
