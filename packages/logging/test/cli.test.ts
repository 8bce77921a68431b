import { rm } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../src/cli.js'
import { createFixture, type Fixture, linesOf, T0, TRACE_ID } from './search-fixtures.js'

let fx: Fixture

beforeAll(async () => {
  fx = await createFixture()
})

afterAll(async () => {
  await rm(fx.root, { recursive: true, force: true })
})

function capture(isTTY = false) {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk))
      callback()
    },
  })
  return Object.assign(stream, { isTTY, text: () => chunks.join('') })
}

async function run(argv: string[], options: { isTTY?: boolean; env?: Record<string, string>; now?: number } = {}) {
  const stdout = capture(options.isTTY)
  const stderr = capture()
  const now = options.now ?? Date.now()
  const code = await main(argv, { stdout, stderr, env: options.env ?? {}, now: () => now })
  return { code, stdout: stdout.text(), stderr: stderr.text() }
}

describe('backplane-logs trace', () => {
  it("prints one trace's records across services in time order", async () => {
    const { code, stdout, stderr } = await run(['trace', TRACE_ID, fx.a, fx.b])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout).toBe(
      [
        '2026-11-22T22:16:00.100Z INFO  orders  order placed  trace=4bf92f35… orderId=o-1 id=o4',
        '2026-11-22T22:16:00.200Z INFO  payments  payment authorized  trace=4bf92f35… id=p3',
        '2026-11-22T22:16:00.250Z INFO  gateway  request done  trace=4bf92f35… id=x1',
        '2026-11-22T22:16:00.300Z INFO  orders  order confirmed  trace=4bf92f35… id=o6',
        '2026-11-22T22:16:00.400Z ERROR payments  capture failed  trace=4bf92f35… code="E 42" id=p4',
        '',
      ].join('\n'),
    )
  })

  it('--json prints the original lines unchanged', async () => {
    const { code, stdout } = await run(['trace', TRACE_ID, fx.b, fx.a, '--json'])
    expect(code).toBe(0)
    expect(stdout).toBe(linesOf(['o4', 'p3', 'x1', 'o6', 'p4']))
  })

  it('needs a trace id', async () => {
    const { code, stdout, stderr } = await run(['trace'])
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr).toContain('trace: expected a trace id')
  })
})

describe('backplane-logs search', () => {
  it('prints every record in time order, with or without the search command', async () => {
    const all = linesOf(['o1', 'o2', 'x2', 'p1', 'p2', 'o3', 'o4', 'p3', 'x1', 'o6', 'p4', 'o7', 'o8', 'p5'])
    expect((await run(['search', fx.a, fx.b, '--json'])).stdout).toBe(all)
    expect((await run([fx.a, fx.b, '--json'])).stdout).toBe(all)
  })

  it('--level warn excludes info and debug', async () => {
    const { code, stdout } = await run([fx.a, fx.b, '--level', 'warn', '--json'])
    expect(code).toBe(0)
    expect(stdout).toBe(linesOf(['x2', 'p2', 'o3', 'p4', 'o7', 'o8']))
  })

  it('--since is inclusive, --until exclusive', async () => {
    const argv = [fx.a, fx.b, '--json', '--since', '2026-11-22T22:16:00.200Z', '--until', '2026-11-22T22:16:00.400Z']
    expect((await run(argv)).stdout).toBe(linesOf(['p3', 'x1', 'o6']))
  })

  it('--since accepts a duration ago', async () => {
    const { stdout } = await run([fx.a, fx.b, '--json', '--since', '10m'], { now: T0 + 26 * 60_000 })
    expect(stdout).toBe(linesOf(['o4', 'p3', 'x1', 'o6', 'p4', 'o7', 'o8', 'p5']))
  })

  it('--service is repeatable', async () => {
    expect((await run([fx.a, fx.b, '--json', '--service', 'payments'])).stdout).toBe(
      linesOf(['p1', 'p2', 'p3', 'p4', 'p5']),
    )
    expect((await run([fx.a, fx.b, '--json', '--service', 'payments', '--service', 'gateway'])).stdout).toBe(
      linesOf(['x2', 'p1', 'p2', 'p3', 'x1', 'p4', 'p5']),
    )
  })

  it('--grep matches msg and the raw line', async () => {
    expect((await run([fx.a, fx.b, '--json', '--grep', 'timeout'])).stdout).toBe(linesOf(['o7']))
    expect((await run([fx.a, fx.b, '--json', '--grep', 'o-2'])).stdout).toBe(linesOf(['o7']))
  })

  it('--limit stops after N records', async () => {
    expect((await run([fx.a, fx.b, '--json', '--limit', '2'])).stdout).toBe(linesOf(['o1', 'o2']))
  })

  it('pretty-prints ISO times, label levels and non-trace fields', async () => {
    const { stdout } = await run([fx.b, '--level', 'warn', '--until', '2026-11-22T22:10:00Z'])
    expect(stdout).toBe('2026-11-22T22:09:00.000Z WARN  payments  card issuer slow  id=p2\n')
  })

  it('colours only on a TTY without NO_COLOR', async () => {
    const argv = [fx.a, '--grep', 'timeout']
    expect((await run(argv, { isTTY: true })).stdout).toBe(
      '\x1b[2m2026-11-22T22:20:01.000Z\x1b[0m \x1b[31mERROR\x1b[0m orders  payment timeout  orderId=o-2 id=o7\n',
    )
    expect((await run(argv, { isTTY: true, env: { NO_COLOR: '1' } })).stdout).not.toContain('\x1b[')
    expect((await run(argv, { isTTY: false })).stdout).not.toContain('\x1b[')
  })

  it('exits 1 when nothing matched', async () => {
    const { code, stdout, stderr } = await run([fx.a, fx.b, '--grep', 'no such text'])
    expect({ code, stdout, stderr }).toEqual({ code: 1, stdout: '', stderr: '' })
  })

  it('warns about a corrupt gzip file on stderr and prints the rest', async () => {
    const { code, stdout, stderr } = await run([fx.corrupt, '--json'])
    expect(code).toBe(0)
    expect(stdout).toBe(linesOf(['o3', 'o4']))
    expect(stderr).toMatch(new RegExp(`^backplane-logs: warning: cannot read ${fx.corruptFile} after line 0: `))
  })

  it('stops quietly when the reader goes away (EPIPE)', async () => {
    let writes = 0
    const stdout = new Writable({
      write(_chunk, _encoding, callback) {
        writes++
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
      },
    })
    const stderr = capture()
    const code = await main([fx.a, fx.b], { stdout, stderr, env: {} })
    expect(code).toBe(0)
    expect(stderr.text()).toBe('')
    expect(writes).toBe(1)
  })
})

describe('bad usage', () => {
  it.each([
    [
      ['--since', 'yesterday'],
      '--since "yesterday": expected an ISO date/time or a relative duration like 15m, 2h, 7d',
    ],
    [
      ['--until', '2026-13-45'],
      '--until "2026-13-45": expected an ISO date/time or a relative duration like 15m, 2h, 7d',
    ],
    [['--level', 'loud'], '--level "loud": expected a level: trace, debug, info, warn, error, fatal or a number'],
    [['--trace', 'xyz'], '--trace "xyz": expected a trace id of 32 hexadecimal characters'],
    [['--limit', '0'], '--limit "0": expected a positive whole number'],
    [['--since', '1h', '--until', '2h'], '--until'],
    [['--colour'], "Unknown option '--colour'"],
  ])('%j exits 2 with a clear message and no stack trace', async (args, message) => {
    const { code, stdout, stderr } = await run([fx.a, ...args])
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr.split('\n')[0]).toContain(`backplane-logs: ${message}`)
    expect(stderr).toContain('Run backplane-logs --help for usage.')
    expect(stderr).not.toMatch(/\n\s+at /)
  })

  it('--help prints the usage and exits 0', async () => {
    const { code, stdout } = await run(['--help'])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^Usage:\n {2}backplane-logs \[search\] \[dirs\.\.\.\]/)
    expect(stdout).toContain('--since T')
  })
})
