import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The example's folder (where its package.json is), from src/ as from the bundled dist/. */
export const EXAMPLE_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('order-flow: cannot find the example folder')
    dir = parent
  }
  return dir
})()

export const CONFIG_DIR = join(EXAMPLE_ROOT, 'config')
