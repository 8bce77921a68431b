import { afterEach } from 'vitest'
import type { Config } from '../../src/index.js'

const open: Config<unknown>[] = []

/** Closes every config started with `track` after each test of the file that calls this. */
export function closeTrackedAfterEach(): void {
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()))
  })
}

/** A started config, closed after the test (see closeTrackedAfterEach). */
export async function track<T>(promise: Promise<Config<T>>): Promise<Config<T>> {
  const config = await promise
  open.push(config as Config<unknown>)
  return config
}

/** A logger keeping each line as `level message {fields}`. */
export function recordingLogger() {
  const lines: string[] = []
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields)}`)
  }
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}
