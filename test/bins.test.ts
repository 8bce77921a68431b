/**
 * Each package's bin is a small file in bin/ that runs the CLI built into dist/: npm links it at
 * install time, when a clone of the repository has no dist/ yet. Unbuilt, it must say what to do.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { packageBins, repoRoot } from './helpers/checkout.js'

const bins = packageBins()
const scratch = mkdtempSync(join(tmpdir(), 'backplane-bins-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe.each(bins)('$name', ({ dir, name, file }) => {
  it('lives outside dist/, so npm can link it before the build', () => {
    expect(file).toMatch(/^bin\/[\w-]+\.js$/)
    expect(readFileSync(join(repoRoot, 'packages', dir, file), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/)
  })

  it('says to build first when dist/ is missing', () => {
    const copy = join(scratch, dir, file)
    mkdirSync(join(copy, '..'), { recursive: true })
    copyFileSync(join(repoRoot, 'packages', dir, file), copy)
    const result = spawnSync(process.execPath, [copy, '--help'], { encoding: 'utf8' })
    expect(result.status).toBe(1)
    expect(result.stderr).toBe(`${name}: this copy of the package is not built: run \`npm run build\` first\n`)
  })
})
