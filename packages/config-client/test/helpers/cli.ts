/** Runs `backplane-config` in-process with captured output, against the etcd at `endpoints`. */
import { Writable } from 'node:stream'
import { main } from '../../src/cli.js'

function capture() {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk))
      callback()
    },
  })
  return Object.assign(stream, { text: () => chunks.join('') })
}

export function cliRunner(endpoints: string, extraEnv: Record<string, string> = {}) {
  return async (argv: string[], signal?: AbortSignal) => {
    const stdout = capture()
    const stderr = capture()
    const code = await main(argv, {
      stdout,
      stderr,
      env: { ETCD_ENDPOINTS: endpoints, ...extraEnv },
      ...(signal ? { signal } : {}),
    })
    return { code, stdout: stdout.text(), stderr: stderr.text() }
  }
}
