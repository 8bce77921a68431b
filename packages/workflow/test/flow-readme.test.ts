/** The README's flow-control example, run as written against the built package. */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')

it('the Flow control example runs as written', async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Flow control'))
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1]
  expect(code).toContain('limits:')
  // Inside the package, so `@backplane/workflow` resolves to itself (its built dist) and zod to its dependency.
  const dir = mkdtempSync(join(root, '.readme-'))
  try {
    const file = join(dir, 'flow.mjs')
    writeFileSync(file, code as string)
    const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: dir, timeout: 30_000 })
    expect(stdout).toContain("[ 'paid', 'paid', 'paid' ]")
    expect(stdout).toMatch(/activity: 'charge',\s+paused: true,\s+breaker: 'closed',\s+failures: 0/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
