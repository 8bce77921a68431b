// `npm run demo`: the order-flow example. It arrives with the examples issue; until then this
// says so instead of failing.

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const entry = new URL('../examples/order-flow/src/demo.mjs', import.meta.url)
if (!existsSync(entry)) {
  console.log('The order-flow demo is not built yet: it lands with the examples issue.')
  console.log('Meanwhile: npm test runs every test; packages/logging/README.md has a quick start.')
  process.exit(0)
}
const result = spawnSync(process.execPath, [entry.pathname, ...process.argv.slice(2)], { stdio: 'inherit' })
process.exit(result.status ?? 1)
