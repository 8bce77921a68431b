// Makes sure a package's dist exists before a benchmark measures it, and warns when the source
// is newer than the build (the numbers would then describe old code).
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** `dir` is the folder under packages/ (e.g. 'logging'); `files` the dist files that must exist. */
export function ensureBuilt(dir, files) {
  const name = `@backplane/${dir}`
  const dist = join(root, 'packages', dir, 'dist')
  if (!files.every((file) => existsSync(join(dist, file)))) {
    process.stdout.write(`building ${name} (dist is missing)…\n`)
    const build = spawnSync('npm', ['run', 'build', '-w', name], { cwd: root, stdio: 'inherit' })
    if (build.status !== 0) {
      process.stderr.write(`build of ${name} failed\n`)
      process.exit(1)
    }
    return
  }
  const built = Math.min(...files.map((file) => statSync(join(dist, file)).mtimeMs))
  const src = join(root, 'packages', dir, 'src')
  const newer = readdirSync(src, { recursive: true })
    .filter((f) => String(f).endsWith('.ts'))
    .filter((f) => statSync(join(src, String(f))).mtimeMs > built)
  if (newer.length > 0) {
    process.stdout.write(
      `note: packages/${dir}/dist is older than src (${newer.join(', ')}); run \`npm run build -w ${name}\` to measure the current source\n`,
    )
  }
}
