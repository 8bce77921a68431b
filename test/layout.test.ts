import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain .mjs script without types
import { checkLayout, LONG_FILES, MAX_LINES } from '../scripts/layout.mjs'

describe('source layout (scripts/layout.mjs)', () => {
  const { cycles, long } = checkLayout() as { cycles: string[][]; long: { file: string; lines: number }[] }

  it('has no import cycle in any package, type imports included', () => {
    expect(cycles).toEqual([])
  })

  it(`has no source file over ${MAX_LINES} lines except the listed single-concept ones`, () => {
    expect(long).toEqual([])
    expect(Object.keys(LONG_FILES).length).toBeLessThanOrEqual(3)
  })
})

describe('scripts/layout.mjs itself', () => {
  it('finds a cycle through a type import and an index file, and a long file', () => {
    const root = mkdtempSync(join(tmpdir(), 'layout-'))
    const src = join(root, 'packages', 'demo', 'src')
    mkdirSync(join(src, 'engine'), { recursive: true })
    writeFileSync(join(src, 'a.ts'), "import type { B } from './engine/index.js'\nexport type A = B\n")
    writeFileSync(join(src, 'engine', 'index.ts'), "export type B = import('../a.js').A\n")
    writeFileSync(join(src, 'long.ts'), 'export {}\n'.repeat(MAX_LINES + 1))
    writeFileSync(join(src, 'fine.ts'), "import { x } from './missing.js'\nexport const y = x\n")
    const { cycles, long } = checkLayout(root)
    expect(cycles).toEqual([['packages/demo/src/a.ts', 'packages/demo/src/engine/index.ts', 'packages/demo/src/a.ts']])
    expect(long).toEqual([{ file: 'packages/demo/src/long.ts', lines: MAX_LINES + 1 }])
  })
})
