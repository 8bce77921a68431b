/**
 * The packages as users get them: `npm pack` each built package, install the tarballs into a new
 * app outside the workspace, and load every export from an ES module and from a CommonJS file.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))
interface Manifest {
  name: string
  private?: boolean
  exports: Record<string, unknown>
  bin?: Record<string, string>
  peerDependencies?: Record<string, string>
}
const packages = readdirSync(join(root, 'packages'))
  .map((dir) => ({ dir: join(root, 'packages', dir), file: join(root, 'packages', dir, 'package.json') }))
  .filter(({ file }) => {
    try {
      readFileSync(file)
      return true
    } catch {
      return false
    }
  })
  .map(({ dir, file }) => ({ dir, manifest: JSON.parse(readFileSync(file, 'utf8')) as Manifest }))
  .filter(({ manifest }) => !manifest.private)

const app = mkdtempSync(join(tmpdir(), 'backplane-consumer-'))
const run = (cmd: string, args: string[], cwd = app) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

beforeAll(() => {
  const tarballs = packages.map(({ dir }) => {
    const out = run('npm', ['pack', '--json', '--pack-destination', app], dir)
    return join(app, (JSON.parse(out) as { filename: string }[])[0]?.filename ?? '')
  })
  const peers = packages.flatMap(({ manifest }) =>
    Object.entries(manifest.peerDependencies ?? {}).map(([name, range]) => `${name}@${range}`),
  )
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs, ...peers])
}, 240_000)

afterAll(() => rmSync(app, { recursive: true, force: true }))

describe.each(packages)('$manifest.name from a packed tarball', ({ manifest }) => {
  const subpaths = Object.keys(manifest.exports)
    .filter((key) => key !== './package.json')
    .map((key) => (key === '.' ? manifest.name : `${manifest.name}/${key.slice(2)}`))

  it.each(subpaths)('%s loads from ESM and CJS with the same named exports', (specifier) => {
    writeFileSync(
      join(app, 'check.mjs'),
      `const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m).filter(k => k !== 'default').sort()))`,
    )
    writeFileSync(
      join(app, 'check.cjs'),
      `const m = require(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m).sort()))`,
    )
    const esm = JSON.parse(run(process.execPath, ['check.mjs'])) as string[]
    const cjs = JSON.parse(run(process.execPath, ['check.cjs'])) as string[]
    expect(esm.length).toBeGreaterThan(0)
    expect(cjs).toEqual(esm)
  })

  it.each(Object.keys(manifest.bin ?? {}))('bin %s runs', (bin) => {
    expect(run(join(app, 'node_modules', '.bin', bin), ['--help'])).toMatch(/usage/i)
  })
})

describe('@backplane/logging works as installed', () => {
  const script = (dir: string) => `
    const log = createLogger({ service: 'consumer', file: { dir: ${JSON.stringify(dir)} } })
    log.info({ n: 1 }, 'hello from a consumer app')
    log.close().then(() => console.log(require('node:fs').readdirSync(${JSON.stringify(dir)}).join()))`

  it('in an ES module app', () => {
    const dir = join(app, 'logs-esm')
    writeFileSync(
      join(app, 'app.mjs'),
      `import { createLogger } from '@backplane/logging'; import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);${script(dir)}`,
    )
    expect(run(process.execPath, ['app.mjs'])).toMatch(/^consumer\.\d{4}-\d\d-\d\dT[\d-]+Z\.000001\.log$/m)
  })

  it('in a CommonJS app', () => {
    const dir = join(app, 'logs-cjs')
    writeFileSync(join(app, 'app.cjs'), `const { createLogger } = require('@backplane/logging');${script(dir)}`)
    expect(run(process.execPath, ['app.cjs'])).toMatch(/^consumer\.\d{4}-\d\d-\d\dT[\d-]+Z\.000001\.log$/m)
  })
})
