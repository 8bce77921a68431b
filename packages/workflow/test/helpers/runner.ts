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

export interface Run {
  child: ChildProcess
  /** Transitions the child reported as committed: instance → seq → state. */
  reported: Map<string, Map<number, string>>
  ready: Promise<number>
  /** Instances the child claimed after its start (taken over from others). */
  claimed: () => number
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; done: boolean; stderr: string }>
}

export function startRunner(
  env: Record<string, string>,
  reported = new Map<string, Map<number, string>>(),
  script = runnerPath,
): Run {
  const child = spawn(process.execPath, [script], {
    cwd: packageDir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let buffer = ''
  let done = false
  let stderr = ''
  let claimed = 0
  let onReady: (n: number) => void = () => undefined
  const ready = new Promise<number>((resolve) => {
    onReady = resolve
  })
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk
    let newline = buffer.indexOf('\n')
    while (newline >= 0) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      newline = buffer.indexOf('\n')
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
    }
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; done: boolean; stderr: string }>(
    (resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal, done, stderr }))
    },
  )
  return { child, reported, ready, exit, claimed: () => claimed }
}

export { sleep } from '@backplane/internal'
