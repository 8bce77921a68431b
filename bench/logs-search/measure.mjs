// Runs one command as a user would, under GNU time for its peak RSS, and counts what it printed.
import { spawn } from 'node:child_process'
import { existsSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const GNU_TIME = '/usr/bin/time'
export const hasGnuTime = () => existsSync(GNU_TIME)

/** FNV-1a of a line; the sum over lines identifies the set of lines printed whatever their order. */
function fnv(line) {
  let h = 0x811c9dc5
  for (let i = 0; i < line.length; i++) h = Math.imul(h ^ line.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/**
 * Resolves with { ms, rssKB, lines, sum, code, stderr }: wall time from spawn to exit, the peak
 * RSS GNU time reports (the largest single process of the command's tree), and the lines it
 * printed. `discard` sends stdout to /dev/null instead (the floor).
 */
export function measure([command, args], { cwd, discard = false, timeoutMs = 30 * 60_000 }) {
  const timeFile = join(tmpdir(), `logs-search-time-${process.pid}-${Math.random().toString(36).slice(2)}`)
  const useTime = hasGnuTime()
  const argv = useTime ? ['-f', '%M', '-o', timeFile, command, ...args] : args
  return new Promise((resolve) => {
    const stdout = discard ? openSync('/dev/null', 'w') : 'pipe'
    const started = performance.now()
    const child = spawn(useTime ? GNU_TIME : command, argv, { cwd, stdio: ['ignore', stdout, 'pipe'] })
    let lines = 0
    let sum = 0
    let rest = ''
    child.stdout?.setEncoding('utf8')
    child.stdout?.on('data', (text) => {
      const parts = (rest + text).split('\n')
      rest = parts.pop() ?? ''
      for (const line of parts) {
        lines++
        sum = (sum + fnv(line)) >>> 0
      }
    })
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (text) => {
      if (stderr.length < 4000) stderr += text
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code, signal) => {
      const ms = performance.now() - started
      clearTimeout(timer)
      if (rest !== '') {
        lines++
        sum = (sum + fnv(rest)) >>> 0
      }
      let rssKB = Number.NaN
      if (useTime) {
        try {
          rssKB = Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop())
        } catch {}
        rmSync(timeFile, { force: true })
      }
      resolve({ ms, rssKB, lines, sum, code, signal, stderr: stderr.trim() })
    })
  })
}
