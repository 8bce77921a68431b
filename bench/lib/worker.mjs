import { spawn } from 'node:child_process'

/**
 * Runs one measurement in a fresh Node process: `node <script> ...args` in `cwd`, killed after
 * `timeoutMs`. Resolves (never rejects) with the JSON of the last line it printed when it exited
 * 0, else `result` undefined, plus its exit code, signal and stderr for the report.
 */
export function runWorker(script, args, { cwd, timeoutMs }) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      let result
      try {
        result = code === 0 ? JSON.parse(stdout.trim().split('\n').pop() ?? '') : undefined
      } catch {}
      resolve({ result, code, signal, stderr: stderr.trim() })
    })
  })
}
