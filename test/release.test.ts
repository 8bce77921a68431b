/**
 * A release dry run: what `changeset version` and `npm publish` would do with the work tree as it
 * is now, without touching it and without publishing anything.
 *
 * 1. A scratch copy of the repository in a temp dir: the files a fresh clone would have plus the
 *    uncommitted work (`git ls-files --cached --others --exclude-standard`, minus files deleted in
 *    the work tree), each workspace's built `dist/` (scripts/test.sh builds them first), and a
 *    symlink to the root `node_modules` (for `changeset`, no install).
 * 2. `changeset version` there; per public package: the version the pending changesets call for
 *    (highest bump per package, applied with semver), a CHANGELOG.md with each changeset's summary,
 *    workspace-internal dependency ranges that take the new versions, and no changeset left over.
 * 3. `npm publish --dry-run --json` in each public package of the copy: name and version of the
 *    tarball, every file `exports` (bar the `@backplane/source` development condition), `main`,
 *    `module`, `types` and `bin` name is in it, no sources, tests, benchmarks or build configs,
 *    every file a packed declaration file or script refers to by relative path is in it (the bin
 *    shims' `new URL('../dist/...', import.meta.url)` included), source maps carry the sources
 *    they name, bins start with `#!`, and what the shipped code imports from other packages is
 *    declared in dependencies or peerDependencies.
 *    A LICENSE file ships when package.json names a license, and npm has nothing to warn about
 *    (it auto-corrects fields it finds wrong and says so).
 * 4. One line per package in the log: name@version, file count, packed and unpacked size.
 *
 * RELEASE_DRY_RUN_KEEP=1 keeps the scratch copy (its path is logged) to look at after a failure.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { builtinModules, createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, posix, relative } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { copyCheckout, repoRoot, userEnv } from './helpers/checkout.js'

const root = repoRoot
const changesetBin = join(root, 'node_modules', '.bin', 'changeset')
// semver as @changesets/cli itself resolves it (the root does not declare it): the same rules
// `changeset version` applies.
const semver = createRequire(createRequire(join(root, 'package.json')).resolve('@changesets/cli/package.json'))(
  'semver',
) as {
  inc(version: string, release: string): string | null
  gt(a: string, b: string): boolean
  satisfies(version: string, range: string): boolean
  validRange(range: string): string | null
  minVersion(range: string): { version: string } | null
}

type Deps = Record<string, string>
interface Manifest {
  name: string
  version: string
  private?: boolean
  license?: string
  exports?: unknown
  main?: string
  module?: string
  types?: string
  typings?: string
  bin?: string | Record<string, string>
  dependencies?: Deps
  peerDependencies?: Deps
  optionalDependencies?: Deps
  devDependencies?: Deps
}
interface Workspace {
  /** Directory relative to the repository root, posix separators. */
  dir: string
  manifest: Manifest
}
/** One package of `npm publish --dry-run --json` (npm pack's report). */
interface PackReport {
  name: string
  version: string
  size: number
  unpackedSize: number
  entryCount: number
  filename: string
  files: { path: string; size: number }[]
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T

/** The workspaces of the root package.json (plain directories and `dir/*` globs), read at run time. */
function workspaces(repo: string): Workspace[] {
  const globs = readJson<{ workspaces?: string[] | { packages?: string[] } }>(join(repo, 'package.json')).workspaces
  const patterns = Array.isArray(globs) ? globs : (globs?.packages ?? [])
  const dirs = patterns.flatMap((pattern) => {
    const clean = pattern.replace(/\/+$/, '')
    if (!clean.endsWith('/*')) return [clean]
    const parent = clean.slice(0, -2)
    if (!existsSync(join(repo, parent))) return []
    return readdirSync(join(repo, parent), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => `${parent}/${entry.name}`)
  })
  return dirs
    .filter((dir) => existsSync(join(repo, dir, 'package.json')))
    .map((dir) => ({ dir, manifest: readJson<Manifest>(join(repo, dir, 'package.json')) }))
}

const all = workspaces(root)
const publicPackages = all.filter(({ manifest }) => !manifest.private)
const internalNames = new Set(all.map(({ manifest }) => manifest.name))

// ---------------------------------------------------------------------------------------------
// Changesets: the expected versions, computed from the frontmatter, not by changesets.

type Bump = 'major' | 'minor' | 'patch' | 'none'
const bumpOrder: Bump[] = ['none', 'patch', 'minor', 'major']
const higher = (a: Bump, b: Bump): Bump => (bumpOrder.indexOf(a) >= bumpOrder.indexOf(b) ? a : b)

interface Changeset {
  file: string
  releases: Map<string, Bump>
  summary: string
}

/** `.changeset/*.md` (README.md excepted, as changesets does): frontmatter and summary. */
function readChangesets(repo: string): Changeset[] {
  const dir = join(repo, '.changeset')
  return readdirSync(dir)
    .filter((file) => file.endsWith('.md') && file !== 'README.md')
    .sort()
    .map((file) => {
      const text = readFileSync(join(dir, file), 'utf8').replace(/\r\n/g, '\n')
      const match = /^\s*---\n([\s\S]*?)\n?---\n?([\s\S]*)$/.exec(text)
      if (!match) throw new Error(`.changeset/${file}: no frontmatter (--- "package": bump ---)`)
      const releases = new Map<string, Bump>()
      for (const line of (match[1] ?? '').split('\n')) {
        if (!line.trim()) continue
        const release = /^\s*(["']?)(.+?)\1\s*:\s*(major|minor|patch|none)\s*$/.exec(line)
        if (!release) throw new Error(`.changeset/${file}: cannot read the frontmatter line ${JSON.stringify(line)}`)
        const [, , name = '', bump = 'none'] = release
        if (!internalNames.has(name)) throw new Error(`.changeset/${file}: ${name} is not a workspace package`)
        releases.set(name, higher(releases.get(name) ?? 'none', bump as Bump))
      }
      return { file, releases, summary: (match[2] ?? '').trim() }
    })
}

interface ChangesetConfig {
  fixed?: string[][]
  linked?: string[][]
  ignore?: string[]
}

/** Names matched by a changesets group entry (a name or a glob with `*`). */
const groupMembers = (group: string[], names: string[]) =>
  names.filter((name) =>
    group.some((pattern) =>
      new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(name),
    ),
  )

/** The new version of every package: highest bump of its changesets, `fixed` and `linked` applied. */
function expectedVersions(changesets: Changeset[], config: ChangesetConfig, packages: Workspace[]) {
  const current = new Map(packages.map(({ manifest }) => [manifest.name, manifest.version]))
  const bumps = new Map<string, Bump>()
  for (const { releases } of changesets) {
    for (const [name, bump] of releases) bumps.set(name, higher(bumps.get(name) ?? 'none', bump))
  }
  const next = new Map<string, string>()
  const apply = (name: string, from: string, bump: Bump) =>
    next.set(name, bump === 'none' ? from : (semver.inc(from, bump) ?? from))
  for (const [name, version] of current) apply(name, version, bumps.get(name) ?? 'none')
  const names = [...current.keys()]
  // fixed: once one member is released, all are, with the highest bump, from the highest version.
  for (const group of config.fixed ?? []) {
    const members = groupMembers(group, names)
    const bump = members.reduce<Bump>((acc, name) => higher(acc, bumps.get(name) ?? 'none'), 'none')
    if (bump === 'none') continue
    const top = members.map((name) => current.get(name) ?? '0.0.0').reduce((a, b) => (semver.gt(b, a) ? b : a))
    for (const name of members) apply(name, top, bump)
  }
  // linked: the released members share the highest bump, from the highest version among them.
  for (const group of config.linked ?? []) {
    const members = groupMembers(group, names).filter((name) => (bumps.get(name) ?? 'none') !== 'none')
    if (members.length === 0) continue
    const bump = members.reduce<Bump>((acc, name) => higher(acc, bumps.get(name) ?? 'none'), 'none')
    const top = members.map((name) => current.get(name) ?? '0.0.0').reduce((a, b) => (semver.gt(b, a) ? b : a))
    for (const name of members) apply(name, top, bump)
  }
  return next
}

/**
 * A changelog entry's text, comparable with the changeset's summary: the default changelog indents
 * continuation lines and changesets formats the file with prettier (list markers, emphasis, and
 * the code blocks: quotes, semicolons, trailing commas, parentheses, line breaks), so compare the
 * text with whitespace, list markers and what prettier may add or change taken out.
 */
function normalise(markdown: string) {
  return markdown
    .split('\n')
    .map((line) => line.trim().replace(/^[-*+]\s+/, ''))
    .join(' ')
    .replace(/[\s;,()]+/g, '')
    .replace(/["'`]/g, "'")
    .replace(/\*/g, '_')
}

// ---------------------------------------------------------------------------------------------
// The scratch copy.

const scratch = mkdtempSync(join(tmpdir(), 'backplane-release-'))
const keep = process.env.RELEASE_DRY_RUN_KEEP === '1'

function copyRepository() {
  const copied = copyCheckout(scratch)
  for (const { dir } of all) {
    const dist = join(root, dir, 'dist')
    if (existsSync(dist)) cpSync(dist, join(scratch, dir, 'dist'), { recursive: true, verbatimSymlinks: true })
  }
  symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'), 'dir')
  return copied
}

// A user's environment (no npm settings of the `npm test` that started us), with npm's warnings
// shown: the test fails on them.
const env = userEnv({
  npm_config_loglevel: 'warn',
  // A second guard: any npm command started here is a dry run, whatever its flags say.
  npm_config_dry_run: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
})
const run = (cmd: string, args: string[], cwd: string) => {
  try {
    return execFileSync(cmd, args, {
      cwd,
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    })
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string }
    throw new Error(
      `${cmd} ${args.join(' ')} (in ${relative(scratch, cwd) || 'the scratch copy'}) failed:\n${stderr}\n${stdout}`,
    )
  }
}

interface Packed {
  report: PackReport
  manifest: Manifest
  /** Lines npm printed as warnings (e.g. fields it auto-corrected). */
  warnings: string[]
  command: string
}

const before = new Map<string, Manifest>()
const expected = new Map<string, string>()
let pending: Changeset[] = []
const packed = new Map<string, Packed>()
const started = Date.now()

const npm = (args: string[], cwd: string) => {
  const result = spawnSync('npm', args, {
    cwd,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  })
  return { ok: result.status === 0, stdout: result.stdout ?? '', stderr: result.stderr ?? '' }
}

/**
 * `npm publish --dry-run --json`, with `npm_config_dry_run` as a second guard. It works without
 * the network and without a login (checked with npm 11: a dry run neither authenticates nor asks
 * the registry whether the version exists). Should a future npm need the registry for it and fail
 * offline, fall back to `npm pack --dry-run --json`, which reports the same tarball, and say so.
 */
function dryRunPublish(dir: string, name: string): Packed {
  const cwd = join(scratch, dir)
  const publishArgs = ['publish', '--dry-run', '--json', '--ignore-scripts']
  let command = 'npm publish --dry-run'
  let result = npm(publishArgs, cwd)
  if (!result.ok) {
    if (
      !/ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|network/i.test(result.stderr + result.stdout)
    )
      throw new Error(`${name}: npm ${publishArgs.join(' ')} failed in ${dir}:\n${result.stderr}\n${result.stdout}`)
    command = 'npm pack --dry-run, as npm publish --dry-run needed the network'
    result = npm(['pack', '--dry-run', '--json', '--ignore-scripts'], cwd)
    if (!result.ok) throw new Error(`${name}: npm pack --dry-run failed in ${dir}:\n${result.stderr}\n${result.stdout}`)
  }
  // `npm pack --json` prints an array; `npm publish --json` one object, or an object per workspace
  // name when npm treats the directory as a workspace of the root.
  const json = JSON.parse(result.stdout) as PackReport[] | PackReport | Record<string, PackReport>
  const report = Array.isArray(json)
    ? json[0]
    : 'files' in json && Array.isArray(json.files)
      ? (json as PackReport)
      : (json as Record<string, PackReport>)[name]
  if (!report) throw new Error(`${name}: no report for it in the output of ${command}:\n${result.stdout}`)
  const warnings = result.stderr
    .split('\n')
    .filter((line) => /^npm warn/i.test(line))
    .filter((line) => !/dry-run|--dry-run|This command requires you to be logged in/i.test(line))
  return { report, manifest: readJson<Manifest>(join(cwd, 'package.json')), warnings, command }
}

beforeAll(() => {
  const copied = copyRepository()
  if (keep) console.log(`release dry run: scratch copy (${copied} files) kept at ${scratch}`)
  const copy = workspaces(scratch)
  for (const { manifest } of copy) before.set(manifest.name, manifest)
  pending = readChangesets(scratch)
  const config = readJson<ChangesetConfig>(join(scratch, '.changeset', 'config.json'))
  for (const [name, version] of expectedVersions(pending, config, copy)) expected.set(name, version)

  run(changesetBin, ['version'], scratch)

  for (const { dir, manifest } of publicPackages) packed.set(manifest.name, dryRunPublish(dir, manifest.name))
}, 120_000)

afterAll(() => {
  if (!keep) rmSync(scratch, { recursive: true, force: true })
  console.log(`release dry run: ${((Date.now() - started) / 1000).toFixed(1)} s`)
})

// ---------------------------------------------------------------------------------------------
// The checks.

it('changeset version consumed every pending changeset', () => {
  const left = readdirSync(join(scratch, '.changeset')).filter((file) => file.endsWith('.md') && file !== 'README.md')
  expect(left, '.changeset/*.md left after `changeset version`').toEqual([])
})

it('workspace-internal dependency ranges take the new versions (the private example included)', () => {
  const problems: string[] = []
  for (const { dir, manifest } of workspaces(scratch)) {
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies'] as const) {
      for (const [dep, range] of Object.entries(manifest[field] ?? {})) {
        if (!internalNames.has(dep)) continue
        const version = expected.get(dep) ?? ''
        const where = `${manifest.name} (${dir}/package.json) ${field}.${dep}: "${range}"`
        if (range.startsWith('file:') || range.startsWith('link:')) continue
        const bare = range.replace(/^workspace:/, '')
        if (['*', '^', '~'].includes(bare)) continue // workspace:* / workspace:^ are replaced on publish
        if (!semver.validRange(bare)) problems.push(`${where} is not a semver range`)
        else if (!semver.satisfies(version, bare)) problems.push(`${where} does not take the new version ${version}`)
        else if (semver.validRange(bare) !== '*' && semver.minVersion(bare)?.version !== version)
          problems.push(`${where} still allows versions before the new ${version} (changesets should have moved it)`)
      }
    }
  }
  expect(problems).toEqual([])
})

describe.each(publicPackages)('$manifest.name', ({ dir, manifest: { name } }) => {
  const manifestAfter = () => readJson<Manifest>(join(scratch, dir, 'package.json'))

  it('is versioned as its changesets say', () => {
    const from = before.get(name)?.version
    const to = expected.get(name)
    const mentioned = pending.filter(({ releases }) => releases.has(name)).map(({ file }) => file)
    expect(
      manifestAfter().version,
      `${name}: ${from} with ${mentioned.join(', ') || 'no changesets'} should become ${to}`,
    ).toBe(to)
  })

  it('has a CHANGELOG.md with the summary of each of its changesets under the new version', () => {
    const file = join(scratch, dir, 'CHANGELOG.md')
    expect(existsSync(file), `${name}: ${dir}/CHANGELOG.md was not written`).toBe(true)
    const version = expected.get(name) ?? ''
    const lines = readFileSync(file, 'utf8').split('\n')
    const start = lines.findIndex((line) => line.trim() === `## ${version}`)
    expect(start, `${name}: CHANGELOG.md has no "## ${version}" heading`).toBeGreaterThanOrEqual(0)
    const end = lines.findIndex((line, i) => i > start && line.startsWith('## '))
    const section = normalise(lines.slice(start, end === -1 ? undefined : end).join('\n'))
    const missing = pending
      .filter(({ releases, summary }) => (releases.get(name) ?? 'none') !== 'none' && summary)
      .filter(({ summary }) => !section.includes(normalise(summary)))
      .map(
        ({ file, summary }) =>
          `${name}: CHANGELOG.md, section ${version}, lacks the summary of .changeset/${file} ("${summary.slice(0, 60)}...")`,
      )
    expect(missing).toEqual([])
  })

  it('packs what users need and nothing else', () => {
    const result = packed.get(name)
    if (!result) throw new Error(`${name}: not packed`)
    const { report, manifest } = result
    const files = new Set(report.files.map((file) => file.path.replace(/^\.\//, '')))
    const problems: string[] = []
    const need = (path: string, why?: string) => {
      const file = posix.normalize(path.replace(/^\.\//, ''))
      if (!files.has(file)) problems.push(`${name}: ${why ? `${why} -> ` : ''}${path} is not in the packed files`)
    }

    if (report.name !== manifest.name) problems.push(`${name}: the tarball is named ${report.name}`)
    if (report.version !== manifest.version || manifest.version !== expected.get(name))
      problems.push(
        `${name}: the tarball has version ${report.version}, the bumped package.json ${manifest.version}, the changesets call for ${expected.get(name)}`,
      )
    for (const file of ['package.json', 'README.md', 'CHANGELOG.md']) need(file)
    if (manifest.license) need('LICENSE', `"license": "${manifest.license}"`)
    for (const warning of result.warnings) problems.push(`${name}: npm warns on publish: ${warning}`)

    // exports: every target of every condition, the development-only source condition excepted
    const walk = (node: unknown, subpath: string, conditions: string[]) => {
      const where = `exports ${subpath}${conditions.length ? ` ${conditions.join('.')}` : ''}`
      if (typeof node === 'string') {
        if (!node.includes('*')) need(node, where)
        else {
          const body = node
            .replace(/^\.\//, '')
            .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '.+')
          if (![...files].some((file) => new RegExp(`^${body}$`).test(file)))
            problems.push(`${name}: ${where} -> ${node} matches no packed file`)
        }
      } else if (Array.isArray(node)) for (const item of node) walk(item, subpath, conditions)
      else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === '@backplane/source') continue
          if (key.startsWith('.')) walk(value, key, [])
          else walk(value, subpath, [...conditions, key])
        }
      }
    }
    walk(manifest.exports, '.', [])
    for (const field of ['main', 'module', 'types', 'typings'] as const) {
      const target = manifest[field]
      if (target) need(target, field)
    }
    const bins =
      typeof manifest.bin === 'string' ? { [name.split('/').pop() ?? name]: manifest.bin } : (manifest.bin ?? {})
    for (const [bin, target] of Object.entries(bins)) {
      need(target, `bin ${bin}`)
      const file = join(scratch, dir, target)
      if (existsSync(file) && !readFileSync(file, 'utf8').startsWith('#!'))
        problems.push(`${name}: bin ${bin} -> ${target} has no #! line, so it does not run as a command`)
    }

    // nothing from the sources, tests, benchmarks or build configuration
    for (const file of files) {
      if (/(^|\/)(src|test|tests|__tests__|bench)\//.test(file))
        problems.push(`${name}: ${file} is packed (sources/tests/benchmarks)`)
      if (/(^|\/)tsconfig[^/]*\.json$|(^|\/)tsup\.config\.|\.tsbuildinfo$/.test(file))
        problems.push(`${name}: ${file} is packed (build configuration)`)
    }

    // declaration files: every relative reference in a packed .d.ts/.d.cts resolves to a packed file
    for (const file of files) {
      if (!/\.d\.[cm]?ts$/.test(file)) continue
      const text = readFileSync(join(scratch, dir, file), 'utf8')
      const specifiers = [
        ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*["'](\.[^"']*)["']/gm),
        ...text.matchAll(/\bimport\(\s*["'](\.[^"']*)["']\s*\)/g),
        ...text.matchAll(/^\s*import\s*["'](\.[^"']*)["']/gm),
        ...text.matchAll(/\/\/\/\s*<reference\s+path=["']([^"']+)["']/g),
      ].map((match) => match[1] ?? '')
      for (const specifier of new Set(specifiers)) {
        const base = posix.join(posix.dirname(file), specifier)
        const candidates = /\.d\.[cm]?ts$/.test(base)
          ? [base]
          : /\.c(j|t)s$/.test(base)
            ? [base.replace(/\.c[jt]s$/, '.d.cts')]
            : /\.m(j|t)s$/.test(base)
              ? [base.replace(/\.m[jt]s$/, '.d.mts')]
              : /\.(j|t)s$/.test(base)
                ? [base.replace(/\.[jt]s$/, '.d.ts')]
                : [`${base}.d.ts`, `${base}/index.d.ts`]
        if (!candidates.some((candidate) => files.has(candidate)))
          problems.push(
            `${name}: ${file} refers to ${specifier} -> ${candidates.join(' or ')} is not in the packed files`,
          )
      }
    }

    // shipped code: what a file loads by relative path (imports, requires, new URL(..., import.meta.url)
    // as the bin shims do) is packed
    for (const file of files) {
      if (!/\.[cm]?js$/.test(file)) continue
      const text = readFileSync(join(scratch, dir, file), 'utf8')
      const specifiers = [
        ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*["'](\.{1,2}\/[^"']*)["']/gm),
        ...text.matchAll(/^\s*import\s*["'](\.{1,2}\/[^"']*)["']/gm),
        ...text.matchAll(/\b(?:require|import)\(\s*["'](\.{1,2}\/[^"']*)["']\s*\)/g),
        ...text.matchAll(/\bnew URL\(\s*["'](\.{1,2}\/[^"']*)["']\s*,\s*import\.meta\.url\s*\)/g),
      ].map((match) => match[1] ?? '')
      for (const specifier of new Set(specifiers)) {
        const target = posix.normalize(posix.join(posix.dirname(file), specifier))
        if (!files.has(target) && !files.has(`${target}.js`) && !files.has(`${target}/index.js`))
          problems.push(`${name}: ${file} loads ${specifier} -> ${target} is not in the packed files`)
      }
    }

    // source maps: the map a file names is packed, and sources that are not shipped are embedded
    for (const file of files) {
      if (/\.[cm]?js$/.test(file)) {
        const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(scratch, dir, file), 'utf8'))?.[1]
        if (url && !url.startsWith('data:')) need(posix.join(posix.dirname(file), url), `${file} sourceMappingURL`)
      }
      if (!file.endsWith('.map')) continue
      const map = readJson<{ sources?: string[]; sourcesContent?: (string | null)[] }>(join(scratch, dir, file))
      const unshipped = (map.sources ?? []).filter(
        (source, i) =>
          typeof map.sourcesContent?.[i] !== 'string' && !files.has(posix.join(posix.dirname(file), source)),
      )
      if (unshipped.length > 0)
        problems.push(
          `${name}: ${file} maps to ${unshipped.slice(0, 3).join(', ')}${unshipped.length > 3 ? ', ...' : ''}, which are not packed, and has no sourcesContent for them`,
        )
    }

    // what the shipped code imports is declared (a devDependency is not installed for users)
    const declared = new Set([
      manifest.name,
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
      ...Object.keys(manifest.optionalDependencies ?? {}),
    ])
    const packageName = /^((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*)(?:\/[\w./-]*)?$/i
    for (const file of files) {
      if (!/\.([cm]?js|d\.[cm]?ts)$/.test(file)) continue
      const text = readFileSync(join(scratch, dir, file), 'utf8')
      const specifiers = [
        ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"'.][^"']*)["']/gm),
        ...text.matchAll(/^\s*import\s*["']([^"'.][^"']*)["']/gm),
        ...text.matchAll(/\b(?:require|import)\(\s*["']([^"'.][^"']*)["']\s*\)/g),
      ].map((match) => match[1] ?? '')
      for (const specifier of new Set(specifiers)) {
        const dep = packageName.exec(specifier)?.[1]
        if (!dep || specifier.startsWith('node:') || builtinModules.includes(dep) || declared.has(dep)) continue
        problems.push(
          `${name}: ${file} imports ${specifier}, but ${dep} is not in dependencies or peerDependencies${manifest.devDependencies?.[dep] ? ' (only in devDependencies)' : ''}`,
        )
      }
    }

    expect(problems).toEqual([])
  })
})

afterAll(() => {
  // What users would get, one line per package.
  const kB = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`
  for (const [name, { report, command }] of packed)
    console.log(
      `release dry run: ${name}@${report.version}: ${report.entryCount} files, ${kB(report.size)} packed, ${kB(report.unpackedSize)} unpacked (${command})`,
    )
})
