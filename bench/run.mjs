// `npm run bench -- <name...>` runs bench/<name>/run.mjs for each name, one after the other;
// `npm run bench` lists the names. Benchmarks are standalone: never part of the unit run.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const benchDir = dirname(fileURLToPath(import.meta.url))
const available = readdirSync(benchDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(benchDir, entry.name, 'run.mjs')))
  .map((entry) => entry.name)
  .sort()

const names = process.argv.slice(2)
if (names.length === 0) {
  process.stdout.write(
    `usage: npm run bench -- <name...>\navailable: ${available.length > 0 ? available.join(', ') : '(none)'}\n`,
  )
  process.exit(0)
}

const unknown = names.filter((name) => !available.includes(name))
if (unknown.length > 0) {
  process.stderr.write(
    `unknown benchmark ${unknown.map((n) => JSON.stringify(n)).join(', ')}: available: ${available.join(', ') || '(none)'}\n`,
  )
  process.exit(2)
}

let failed = 0
for (const name of names) {
  process.stdout.write(`\n== bench ${name} ==\n`)
  const result = spawnSync(process.execPath, [join(benchDir, name, 'run.mjs')], { stdio: 'inherit' })
  if (result.status !== 0) {
    failed++
    process.stderr.write(`bench ${name} failed (${result.signal ?? `exit ${result.status}`})\n`)
  }
}
process.exit(failed > 0 ? 1 : 0)
