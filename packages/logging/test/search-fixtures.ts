import { mkdir, mkdtemp, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { formatLogFileName } from '../src/file-names.js'

/** 2026-11-22T22:00:00Z: the start of the first fixture file. */
export const T0 = Date.UTC(2026, 10, 22, 22, 0, 0)
export const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const MIN = 60_000

const traced = (spanId: string) => ({ trace_id: TRACE_ID, span_id: spanId, trace_flags: '01' })

function line(id: string, service: string, level: number | string, time: number | string, msg: string, extra = {}) {
  const record = { level, time, pid: 12, hostname: 'h1', 'service.name': service, ...extra, msg, id }
  return { id, text: JSON.stringify(record) }
}

/**
 * Every fixture record, by id, in the order a full search must return them. One trace runs through
 * orders (dir a), payments (dir b) and gateway (app.log in dir a) with interleaved times.
 */
export const RECORDS = {
  o1: line('o1', 'orders', 30, T0 + 1000, 'order created', { orderId: 'o-1' }),
  o2: line('o2', 'orders', 20, T0 + 2 * MIN, 'cart loaded'),
  x2: line('x2', 'gateway', 40, T0 + 3 * MIN, 'slow request', { route: '/orders' }),
  p1: line('p1', 'payments', 30, T0 + 5 * MIN + 200, 'payment service up'),
  p2: line('p2', 'payments', 'warn', new Date(T0 + 9 * MIN).toISOString(), 'card issuer slow'),
  o3: line('o3', 'orders', 40, T0 + 10 * MIN + 500, 'stock low', { sku: 's-1' }),
  o4: line('o4', 'orders', 30, T0 + 16 * MIN + 100, 'order placed', { ...traced('00f067aa0ba902b7'), orderId: 'o-1' }),
  p3: line('p3', 'payments', 30, T0 + 16 * MIN + 200, 'payment authorized', traced('1111111111111111')),
  x1: line('x1', 'gateway', 30, T0 + 16 * MIN + 250, 'request done', traced('2222222222222222')),
  o6: line('o6', 'orders', 30, T0 + 16 * MIN + 300, 'order confirmed', traced('00f067aa0ba902b7')),
  p4: line('p4', 'payments', 50, T0 + 16 * MIN + 400, 'capture failed', {
    ...traced('3333333333333333'),
    code: 'E 42',
  }),
  o7: line('o7', 'orders', 50, T0 + 20 * MIN + 1000, 'payment timeout', { orderId: 'o-2' }),
  o8: line('o8', 'orders', 60, T0 + 25 * MIN, 'shutting down'),
  p5: line('p5', 'payments', 30, T0 + 30 * MIN, 'payment settled', { amount: 12.5 }),
}
export type RecordId = keyof typeof RECORDS
export const ALL_IDS = Object.keys(RECORDS) as RecordId[]

const PARTIAL_LINE = '{"level":30,"time":17638523'

function content(ids: RecordId[], partialLast = false): string {
  return ids.map((id) => `${RECORDS[id].text}\n`).join('') + (partialLast ? PARTIAL_LINE : '')
}

async function writeLog(dir: string, service: string, startedAt: number, seq: number, text: string, gzip: boolean) {
  const name = formatLogFileName(service, startedAt, seq)
  const path = join(dir, gzip ? `${name}.gz` : name)
  await writeFile(path, gzip ? gzipSync(text) : text)
  return path
}

export interface Fixture {
  root: string
  /** orders (3 rotated files, 2 gzipped) and app.log (gateway). */
  a: string
  /** payments (2 rotated files, 1 gzipped). */
  b: string
  /** orders with a corrupt first file, then a good one. */
  corrupt: string
  corruptFile: string
}

export async function createFixture(): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), 'backplane-logs-'))
  const [a, b, corrupt] = ['a', 'b', 'corrupt'].map((name) => join(root, name)) as [string, string, string]
  await Promise.all([a, b, corrupt].map((dir) => mkdir(dir)))

  await writeLog(a, 'orders', T0, 1, content(['o1', 'o2']), true)
  await writeLog(a, 'orders', T0 + 10 * MIN, 2, content(['o3', 'o4', 'o6']), true)
  await writeLog(a, 'orders', T0 + 20 * MIN, 3, content(['o7', 'o8'], true), false)
  const appLog = join(a, 'app.log')
  await writeFile(appLog, content(['x2', 'x1']))
  const mtime = new Date(T0 + 17 * MIN)
  await utimes(appLog, mtime, mtime)

  await writeLog(b, 'payments', T0 + 5 * MIN, 1, content(['p1', 'p2']), true)
  await writeLog(b, 'payments', T0 + 15 * MIN, 2, content(['p3', 'p4', 'p5'], true), false)

  const corruptFile = join(corrupt, `${formatLogFileName('orders', T0, 1)}.gz`)
  await writeFile(corruptFile, 'this is not gzip data')
  await writeLog(corrupt, 'orders', T0 + 10 * MIN, 2, content(['o3', 'o4']), false)
  return { root, a, b, corrupt, corruptFile }
}

/** The original lines of `ids`, each with its line break. */
export function linesOf(ids: RecordId[]): string {
  return ids.map((id) => `${RECORDS[id].text}\n`).join('')
}
