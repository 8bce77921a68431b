import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Store } from '../src/index.js'
import { sqliteStore } from '../src/stores/sqlite.js'
import { storeConformance } from '../src/testing/index.js'

const dir = mkdtempSync(join(tmpdir(), 'wf-sqlite-'))
let n = 0
const paths = new WeakMap<Store, string>()

storeConformance('sqlite', {
  create() {
    const path = join(dir, `db-${++n}`, 'workflows.db')
    const store = sqliteStore(path)
    paths.set(store, path)
    return store
  },
  reopen(store) {
    const path = paths.get(store) as string
    const again = sqliteStore(path)
    paths.set(again, path)
    return again
  },
  async cleanup() {
    rmSync(dir, { recursive: true, force: true })
  },
})

describe('sqlite store options', () => {
  it('refuses a missing path and an unknown synchronous mode with what it expected', () => {
    expect(() => sqliteStore('')).toThrow(/expected a database file path/)
    expect(() => sqliteStore({ path: 'x.db', synchronous: 'off' as 'full' })).toThrow(/expected 'full' or 'normal'/)
  })

  it('reports a file it cannot open as WORKFLOW_STORE_UNAVAILABLE', async () => {
    const store = sqliteStore('/etc/hostname/not-a-dir/workflows.db')
    const error = await store.open().catch((e: unknown) => e)
    expect((error as { code?: string }).code).toBe('WORKFLOW_STORE_UNAVAILABLE')
  })
})
