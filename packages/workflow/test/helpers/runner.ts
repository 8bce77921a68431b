import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const packageDir = fileURLToPath(new URL('../..', import.meta.url))
export const runnerPath = fileURLToPath(new URL('../fixtures/order-runner.mjs', import.meta.url))

/** The runners use the built package, as an app would: fail clearly when it is not built. */
export function requireBuild(): void {
  for (const file of ['dist/index.js', 'dist/sqlite.js', 'dist/postgres.js']) {
    if (!existsSync(`${packageDir}/${file}`)) {
      throw new Error(
        `${file} is missing: run \`npm run build -w @backplane/workflow\` (npm test builds every package first)`,
      )
    }
  }
}

export interface Fixture {
  child: ChildProcess
  /** Everything the child wrote to stderr so far. */
  stderr: () => string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>
}

/** Runs a fixture script with the built package, handing each complete line it prints to `onLine`. */
export function spawnFixture(script: string, env: Record<string, string>, onLine: (line: string) => void): Fixture {
  const child = spawn(process.execPath, [script], {
    cwd: packageDir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let buffer = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk
    for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      onLine(line)
    }
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }))
  })
  return { child, stderr: () => stderr, exit }
}

export interface Run {
  child: ChildProcess
  /** Transitions the child reported as committed: instance → seq → state. */
  reported: Map<string, Map<number, string>>
  ready: Promise<number>
  /** Instances the child claimed after its start (taken over from others). */
  claimed: () => number
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; done: boolean; stderr: string }>
}

/** Runs an order-runner-like fixture: "T <instance> <seq> <to>", "C <n>", "READY <n>" and "DONE" lines. */
export function startRunner(
  env: Record<string, string>,
  reported = new Map<string, Map<number, string>>(),
  script = runnerPath,
): Run {
  let done = false
  let claimed = 0
  let onReady: (n: number) => void = () => undefined
  const ready = new Promise<number>((resolve) => {
    onReady = resolve
  })
  const { child, exit } = spawnFixture(script, env, (line) => {
    if (line.startsWith('T ')) {
      const [, id, seq, to] = line.split(' ')
      let seqs = reported.get(id as string)
      if (!seqs) {
        seqs = new Map()
        reported.set(id as string, seqs)
      }
      seqs.set(Number(seq), to as string)
    } else if (line.startsWith('C ')) claimed += Number(line.slice(2))
    else if (line.startsWith('READY')) onReady(Number(line.split(' ')[1]))
    else if (line === 'DONE') done = true
  })
  return { child, reported, ready, exit: exit.then((e) => ({ ...e, done })), claimed: () => claimed }
}

export { sleep } from '@backplane/internal'
