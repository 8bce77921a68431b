#!/usr/bin/env node
// backplane-bridge: the HTTP bridge as a standalone server (see src/bridge/cli.ts).
import { main } from './bridge/cli.js'

const stop = new AbortController()
process.once('SIGTERM', () => stop.abort())
process.once('SIGINT', () => stop.abort())
main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: stop.signal,
}).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(`backplane-bridge: ${(error as Error)?.stack ?? error}\n`)
    process.exitCode = 1
  },
)
