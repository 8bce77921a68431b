// `npm run demo`: the order-flow example (examples/order-flow). Builds the packages and the example
// first when their dist is missing or older than their source, then runs the demo with the
// arguments given (`npm run demo -- --distributed --broker kafka`).
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const workspaces = [
  ...readdirSync(join(root, 'packages')).map((name) => join(root, 'packages', name)),
  join(root, 'examples', 'order-flow'),
]

const newest = (dir) =>
  readdirSync(dir, { recursive: true })
    .map((file) => statSync(join(dir, String(file))))
    .filter((stat) => stat.isFile())
    .reduce((max, stat) => Math.max(max, stat.mtimeMs), 0)

const stale = workspaces.filter((dir) => {
  const dist = join(dir, 'dist')
  if (!existsSync(dist) || readdirSync(dist).length === 0) return true
  const built = readdirSync(dist).reduce((min, file) => Math.min(min, statSync(join(dist, file)).mtimeMs), Infinity)
  return newest(join(dir, 'src')) > built
})
if (stale.length > 0) {
  process.stdout.write('Building the packages and the example (once; about 20 s)…\n')
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
  if (build.status !== 0) {
    process.stderr.write('The build failed: run `npm run build` to see why.\n')
    process.exit(1)
  }
}
const demo = join(root, 'examples', 'order-flow', 'dist', 'demo.js')
const result = spawnSync(process.execPath, [demo, ...process.argv.slice(2)], { stdio: 'inherit' })
process.exit(result.status ?? 1)
