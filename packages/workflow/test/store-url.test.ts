import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { WorkflowError } from '../src/index.js'
import { storeFromUrl } from '../src/stores/url.js'

const dir = mkdtempSync(join(tmpdir(), 'wf-url-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const code = (fn: () => unknown) => {
  try {
    fn()
    return undefined
  } catch (error) {
    return WorkflowError.is(error) ? `${error.code}: ${error.message}` : String(error)
  }
}

describe('storeFromUrl', () => {
  it('takes a SQLite file path, with or without sqlite:', () => {
    const file = join(dir, 'a.db')
    writeFileSync(file, '')
    expect(storeFromUrl(file).kind).toBe('sqlite')
    expect(storeFromUrl(`sqlite:${file}`, { mustExist: true }).kind).toBe('sqlite')
    expect(storeFromUrl(`sqlite://${file}`, { mustExist: true }).kind).toBe('sqlite')
    expect(code(() => storeFromUrl(join(dir, 'none.db'), { mustExist: true }))).toMatch(
      /^WORKFLOW_INVALID_OPTIONS: store URL: no SQLite file at .*none\.db$/,
    )
  })

  it('takes a postgres:// URL, with schema and tablePrefix read from its query', () => {
    expect(storeFromUrl('postgres://u@127.0.0.1:5432/db').kind).toBe('postgres')
    expect(storeFromUrl('postgresql://u@127.0.0.1/db?schema=ops&tablePrefix=orders_wf_').kind).toBe('postgres')
    // The options are checked by postgresStore: a bad one is named.
    expect(code(() => storeFromUrl('postgres://u@h/db?schema=no-dashes'))).toContain('schema')
  })

  it('refuses anything else, saying what it takes', () => {
    expect(code(() => storeFromUrl('memory://'))).toContain('unsupported scheme "memory:"')
    expect(code(() => storeFromUrl('redis://h'))).toContain('expected a SQLite file path, sqlite:PATH or postgres://')
    expect(code(() => storeFromUrl(''))).toContain('WORKFLOW_INVALID_OPTIONS')
    expect(code(() => storeFromUrl('sqlite:'))).toContain('needs a file path')
  })
})
