/**
 * The packages as users get them: `npm pack` each built package, install the tarballs into a new
 * app outside the workspace, and load every export from an ES module and, where the export has a
 * `require` condition, from a CommonJS file.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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
  // better-sqlite3's install script compiles it (~90 s on 2 cores): take the binary the workspace
  // built instead, the same version from the same lock, and for the Node running this test
  // (scripts/node.sh swaps in the one for its version).
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', ...tarballs, ...peers])
  const binary = join('better-sqlite3', 'build', 'Release', 'better_sqlite3.node')
  mkdirSync(join(app, 'node_modules', binary, '..'), { recursive: true })
  copyFileSync(join(root, 'node_modules', binary), join(app, 'node_modules', binary))
}, 240_000)

afterAll(() => rmSync(app, { recursive: true, force: true }))

describe.each(packages)('$manifest.name from a packed tarball', ({ manifest }) => {
  const subpaths = Object.entries(manifest.exports)
    .filter(([key]) => key !== './package.json')
    .map(([key, conditions]) => ({
      specifier: key === '.' ? manifest.name : `${manifest.name}/${key.slice(2)}`,
      // The testing subpaths load vitest, which cannot be required: they are ESM only, on purpose.
      cjs: typeof conditions === 'object' && conditions !== null && 'require' in conditions,
    }))

  it.each(subpaths)('$specifier loads from ESM (and CJS where it has a require condition)', ({ specifier, cjs }) => {
    writeFileSync(
      join(app, 'check.mjs'),
      `const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m).filter(k => k !== 'default').sort()))`,
    )
    const esm = JSON.parse(run(process.execPath, ['check.mjs'])) as string[]
    expect(esm.length).toBeGreaterThan(0)
    if (!cjs) return
    writeFileSync(
      join(app, 'check.cjs'),
      `const m = require(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m).sort()))`,
    )
    const cjsNames = JSON.parse(run(process.execPath, ['check.cjs'])) as string[]
    expect(cjsNames).toEqual(esm)
  })

  it('bundles @backplane/internal: no code or type file of the package refers to it', () => {
    const dist = join(app, 'node_modules', manifest.name, 'dist')
    const files = readdirSync(dist).filter((name) => /\.(js|cjs|d\.ts|d\.cts)$/.test(name))
    expect(files.length).toBeGreaterThan(0)
    expect(files.filter((name) => readFileSync(join(dist, name), 'utf8').includes('@backplane/internal'))).toEqual([])
    const installed = JSON.parse(readFileSync(join(app, 'node_modules', manifest.name, 'package.json'), 'utf8'))
    expect(JSON.stringify([installed.dependencies, installed.peerDependencies])).not.toContain('@backplane/internal')
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

describe('@backplane/workflow works as installed', () => {
  it('serves the inspector page and its assets from the installed package, in ESM and CJS', () => {
    const body = `
      const server = http.createServer(createInspector({ store: memoryStore(), basePath: '/wf' }))
      server.listen(0, '127.0.0.1', async () => {
        const base = 'http://127.0.0.1:' + server.address().port + '/wf/'
        const out = []
        for (const path of ['', 'assets/app.js', 'assets/app.css', 'api/counts']) {
          const res = await fetch(base + path)
          out.push(res.status + ' ' + res.headers.get('content-type').split(';')[0])
        }
        server.close()
        console.log(JSON.stringify(out))
      })`
    writeFileSync(
      join(app, 'ui.mjs'),
      `import http from 'node:http'; import { memoryStore } from '@backplane/workflow'; import { createInspector } from '@backplane/workflow/ui';${body}`,
    )
    writeFileSync(
      join(app, 'ui.cjs'),
      `const http = require('node:http'); const { memoryStore } = require('@backplane/workflow'); const { createInspector } = require('@backplane/workflow/ui');${body}`,
    )
    for (const script of ['ui.mjs', 'ui.cjs'])
      expect(JSON.parse(run(process.execPath, [script])), script).toEqual([
        '200 text/html',
        '200 text/javascript',
        '200 text/css',
        '200 application/json',
      ])
  })

  it('runs a machine on the SQLite store, from ESM and CJS, on this Node', () => {
    const body = (file: string) => `
      const machine = defineMachine({ id: 'm', version: 1, context: z.object({}), initial: 'a', states: { a: { on: { GO: 'b' } }, b: { type: 'final' } } })
      const engine = await createEngine({ store: sqliteStore(${JSON.stringify(file)}), machines: [machine] })
      await engine.start(machine, { id: 'i-1', input: {} })
      await engine.send('i-1', { type: 'GO' })
      const { state, status } = await engine.get('i-1')
      await engine.close()
      console.log(JSON.stringify({ state, status, node: process.version }))`
    writeFileSync(
      join(app, 'wf.mjs'),
      `import { createEngine, defineMachine } from '@backplane/workflow'; import { sqliteStore } from '@backplane/workflow/sqlite'; import { z } from 'zod';${body(join(app, 'wf-esm.db'))}`,
    )
    writeFileSync(
      join(app, 'wf.cjs'),
      `const { createEngine, defineMachine } = require('@backplane/workflow'); const { sqliteStore } = require('@backplane/workflow/sqlite'); const { z } = require('zod'); (async () => {${body(join(app, 'wf-cjs.db'))}})()`,
    )
    for (const script of ['wf.mjs', 'wf.cjs'])
      expect(JSON.parse(run(process.execPath, [script])), script).toEqual({
        state: 'b',
        status: 'done',
        node: process.version,
      })
  })
})
