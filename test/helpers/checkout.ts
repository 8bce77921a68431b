/**
 * The repository as a fresh clone of it would be, work in progress included: the files git tracks
 * or would track (`git ls-files --cached --others --exclude-standard`), minus those deleted in the
 * work tree. On CI, a clean clone of main, this is exactly what `git clone` gives.
 */
import { execFileSync } from 'node:child_process'
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  type Stats,
  symlinkSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Copies the checkout's files into `dest` (created if missing) and returns how many it copied. */
export function copyCheckout(dest: string): number {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: repoRoot,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  let copied = 0
  for (const file of new Set(listed.split('\0').filter(Boolean))) {
    const from = join(repoRoot, file)
    let stat: Stats
    try {
      stat = lstatSync(from)
    } catch {
      continue // deleted in the work tree, not yet staged
    }
    const to = join(dest, file)
    mkdirSync(dirname(to), { recursive: true })
    if (stat.isSymbolicLink()) symlinkSync(readlinkSync(from), to)
    else if (stat.isFile())
      copyFileSync(from, to) // keeps the mode: bins stay executable
    else continue // a submodule: not part of this repository
    copied++
  }
  return copied
}

/**
 * The environment of a person's shell: this process's, without what `npm test` and the servers it
 * started put there (npm_* settings of the running script, server addresses), which would steer a
 * nested npm or demo away from what a user sees.
 */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|INIT_CWD$|VITEST|TEST$|NODE_ENV$|BACKPLANE_|ETCD_|NATS_|KAFKA_|DATABASE_URL$|PG)/.test(key)) continue
    env[key] = value
  }
  // `npm run` puts every node_modules/.bin above the script on PATH: a bin found there would be
  // this work tree's, not the copy's.
  env.PATH = (env.PATH ?? '')
    .split(':')
    .filter((dir) => !/node_modules[\\/]\.bin|node-gyp-bin/.test(dir))
    .join(':')
  return { ...env, CI: 'true', ...extra }
}

/** Every bin the packages under packages/ declare: its name, package folder and file. */
export function packageBins(): { dir: string; name: string; file: string }[] {
  return readdirSync(join(repoRoot, 'packages')).flatMap((dir) => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'packages', dir, 'package.json'), 'utf8')) as {
      bin?: Record<string, string>
    }
    return Object.entries(manifest.bin ?? {}).map(([name, file]) => ({ dir, name, file }))
  })
}
