import { spawn } from 'node:child_process'
import { chmodSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { LoggingError } from '../src/errors.js'
import { openLogger } from '../src/logger.js'
import { allRecords, tempDir } from './helpers/files.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const dist = join(here, '..', 'dist', 'index.js')

function run(
  args: string[],
  options: { env?: Record<string, string>; uid?: number; signalAfterLine?: NodeJS.Signals | undefined } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...options.env },
      ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk
      const signal = options.signalAfterLine
      if (signal && stdout.includes('ready\n')) {
        options.signalAfterLine = undefined
        child.kill(signal)
      }
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

describe('createLogger', () => {
  it('is a pino logger: levels, child bindings, redaction, service.name on every line', async () => {
    const dir = tempDir()
    const log = openLogger(
      { service: 'orders', level: 'debug', redact: ['card.number'], file: { dir } },
      { handleExit: false },
    )
    const child = log.child({ orderId: 'o-1' })
    child.debug({ card: { number: '4111', brand: 'visa' } }, 'charging')
    log.trace('not written: below level')
    child.child({ step: 2 }).warn('slow')
    await child.flush()
    await log.close()
    const records = allRecords(dir, 'orders')
    expect(records).toHaveLength(2)
    expect(records[0]).toMatchObject({
      level: 20,
      'service.name': 'orders',
      orderId: 'o-1',
      card: { number: '[Redacted]', brand: 'visa' },
      msg: 'charging',
    })
    expect(records[1]).toMatchObject({ level: 40, orderId: 'o-1', step: 2, msg: 'slow' })
    expect(records[0]).not.toHaveProperty('trace_id')
  })

  it('flush resolves on an idle logger and calls its callback', async () => {
    const dir = tempDir()
    const log = openLogger({ service: 'idle', file: { dir } }, { handleExit: false })
    await log.flush()
    const called = await new Promise<boolean>((resolve) => void log.flush(() => resolve(true)))
    expect(called).toBe(true)
    await log.close()
  })

  it.each([
    [{ service: '' }, /service: .*at least 1|service: .*>=1|service: Too small/i],
    [{ service: 'a', level: 'loud' }, /level: /],
    [{ service: 'a', colour: true }, /unknown option\(s\) "colour"/],
    [{ service: 'a', file: { dir: '/tmp/x', size: 'big' } }, /file.size: invalid size "big"/],
    [{ service: 'a', file: { dir: '/tmp/x', interval: '5h' } }, /file.interval: invalid interval "5h"/],
    [{ service: 'a', file: { dir: '/tmp/x', keep: 3 } }, /file: unknown option\(s\) "keep"/],
  ])('rejects %o with LOGGING_INVALID_OPTIONS', (options, message) => {
    let caught: unknown
    try {
      openLogger(options as never, { handleExit: false })
    } catch (error) {
      caught = error
    }
    expect(LoggingError.is(caught)).toBe(true)
    expect((caught as LoggingError).code).toBe('LOGGING_INVALID_OPTIONS')
    expect((caught as LoggingError).message).toMatch(message)
  })

  it('rejects a directory the process may not write, naming it and the reason', async () => {
    const dir = tempDir()
    const locked = join(dir, 'locked')
    mkdirSync(locked)
    chmodSync(dir, 0o755)
    chmodSync(locked, 0o755) // owned by root: another user may not create files in it
    const script = `import('${dist}').then(({ createLogger }) => {
      try { createLogger({ service: 's', file: { dir: ${JSON.stringify(locked)} } }); console.log('created') }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })) }
    })`
    const result = await run(['-e', script], { uid: 65534 })
    const error = JSON.parse(result.stdout) as { name: string; code: string; message: string }
    expect(error.name).toBe('LoggingError')
    expect(error.code).toBe('LOGGING_DIR_UNWRITABLE')
    expect(error.message).toContain(locked)
    expect(error.message).toContain('EACCES')
  })
})

describe('shutdown without loss', () => {
  const app = (dir: string, exit: string) => `
    import('${dist}').then(({ createLogger }) => {
      const log = createLogger({ service: 'app', file: { dir: ${JSON.stringify(dir)}, size: '64K', compress: 'gzip' } })
      for (let i = 0; i < 50000; i++) log.info({ i }, 'line')
      ${exit}
    })`

  it('SIGTERM writes every line already logged, then the process dies of SIGTERM', async () => {
    const dir = tempDir()
    const result = await run(['-e', app(dir, "console.log('ready'); setInterval(() => {}, 1000)")], {
      signalAfterLine: 'SIGTERM',
    })
    expect(result.signal).toBe('SIGTERM')
    const indexes = allRecords(dir, 'app').map((r) => r.i)
    expect(indexes).toEqual([...Array(50000).keys()])
  })

  it('process.exit() right after logging writes every line', async () => {
    const dir = tempDir()
    const result = await run(['-e', app(dir, 'process.exit(3)')])
    expect(result.code).toBe(3)
    expect(allRecords(dir, 'app').map((r) => r.i)).toEqual([...Array(50000).keys()])
  })

  it('an uncaught exception still leaves every line logged before it in the file', async () => {
    const dir = tempDir()
    const result = await run(['-e', app(dir, "setTimeout(() => { throw new Error('crash') }, 1)")])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('crash')
    expect(allRecords(dir, 'app').map((r) => r.i)).toEqual([...Array(50000).keys()])
  })

  it('an app with its own SIGTERM handler keeps control of the exit, and still loses nothing', async () => {
    const dir = tempDir()
    const exit = `process.on('SIGTERM', () => setTimeout(() => { console.log('app cleanup done'); process.exit(0) }, 200))
      console.log('ready'); setInterval(() => {}, 1000)`
    const result = await run(['-e', app(dir, exit)], { signalAfterLine: 'SIGTERM' })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('app cleanup done')
    expect(allRecords(dir, 'app')).toHaveLength(50000)
  })
})
