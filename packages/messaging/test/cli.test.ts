import { randomUUID } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { until } from '@backplane/messaging/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../src/cli.js'
import { type Broker, createBroker, NonRetryableError } from '../src/index.js'
import { sleep } from './sleep.js'

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const out: Buffer[] = []
  const err: Buffer[] = []
  stdout.on('data', (chunk: Buffer) => out.push(chunk))
  stderr.on('data', (chunk: Buffer) => err.push(chunk))
  const code = await main(argv, { stdout, stderr })
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }
}

describe('backplane-messaging dead-letters (in process, memory://)', () => {
  const url = `memory://cli-${randomUUID().slice(0, 8)}`
  const topic = 'orders.created'
  let broker: Broker
  const ids: string[] = []
  const replays: string[] = []

  beforeAll(async () => {
    broker = await createBroker(url)
    let healed = false
    await broker.subscribe<{ n: number }>(
      topic,
      (m) => {
        if (m.headers['backplane-replayed-from'] !== undefined) replays.push(m.id)
        if (healed) return
        if (m.data.n === 0) throw new NonRetryableError('total is negative')
        throw new Error('card processor down')
      },
      { group: 'billing', retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1 } },
    )
    let dead = 0
    broker.events.on('deadLetter', () => dead++)
    for (let n = 0; n < 2; n++) ids.push((await broker.publish(topic, { n }, { key: `o-${n}` })).id)
    await until(() => dead === 2, 5_000, 'two dead letters')
    await sleep(20)
    healed = true
  })
  afterAll(() => broker.close())

  it('prints its usage with --help (0) and refuses wrong usage with 2', async () => {
    const help = await cli('--help')
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('usage: backplane-messaging dead-letters list|show|replay')
    for (const argv of [
      [],
      ['dead-letters'],
      ['dead-letters', 'purge', '--broker', url, '--topic', topic],
      ['dead-letters', 'list', '--topic', topic],
      ['dead-letters', 'list', '--broker', url, '--topic', topic, '--colour'],
      ['dead-letters', 'list', '--broker', url, '--topic', topic, '--limit', 'ten'],
      ['dead-letters', 'list', '--broker', url, '--topic', topic, '--again'],
      ['dead-letters', 'show', '--broker', url, '--topic', topic],
      ['dead-letters', 'list', '--broker', 'carrier-pigeon://coop', '--topic', topic],
    ]) {
      const run = await cli(...argv)
      expect({ argv, code: run.code }).toEqual({ argv, code: 2 })
      expect(run.stderr).toMatch(/^backplane-messaging: /)
    }
    const badSince = await cli('dead-letters', 'list', '--broker', url, '--topic', topic, '--since', 'last tuesday')
    expect(badSince.code).toBe(2)
    expect(badSince.stderr).toContain('since')
  })

  it('lists as a table and as JSON, with filters', async () => {
    const table = await cli('dead-letters', 'list', '--broker', url, '--topic', topic)
    expect(table.code).toBe(0)
    const lines = table.stdout.split('\n')
    expect(lines[0]).toMatch(/^POSITION\s+ID\s+REASON\s+ATTEMPTS\s+GROUP\s+DEAD-LETTERED\s+STATUS$/)
    expect(lines[1]).toMatch(new RegExp(`^0\\s+${ids[0]}\\s+non-retryable\\s+1\\s+billing\\s+\\S+Z\\s+pending$`))
    expect(lines[2]).toMatch(new RegExp(`^1\\s+${ids[1]}\\s+max-attempts\\s+2\\s+billing`))
    expect(table.stdout).toContain('2 dead letter(s): 2 pending, 0 replayed')
    const json = await cli(
      'dead-letters',
      'list',
      '--broker',
      url,
      '--topic',
      topic,
      '--reason',
      'max-attempts',
      '--json',
    )
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ id: ids[1], key: 'o-1', reason: 'max-attempts', data: { n: 1 }, status: 'pending' }),
    ])
    const none = await cli('dead-letters', 'list', '--broker', url, '--topic', 'orders.nothing')
    expect([none.code, none.stdout]).toEqual([0, 'no dead letters\n'])
  })

  it('shows one by position or id, and fails with 1 for one it does not know', async () => {
    const byPosition = await cli('dead-letters', 'show', '--broker', url, '--topic', topic, '0')
    expect(byPosition.code).toBe(0)
    expect(byPosition.stdout).toMatch(/error\s+NonRetryableError: total is negative/)
    expect(byPosition.stdout).toContain('"n": 0')
    const byId = await cli(
      'dead-letters',
      'show',
      '--broker',
      url,
      '--topic',
      topic,
      '--id',
      ids[1] as string,
      '--json',
    )
    expect(JSON.parse(byId.stdout)).toMatchObject({ id: ids[1], position: '1', headers: { 'ce-id': ids[1] } })
    const unknown = await cli('dead-letters', 'show', '--broker', url, '--topic', topic, 'nope')
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('no dead letter "nope"')
  })

  it('replays what matches, then skips it unless --again', async () => {
    const first = await cli('dead-letters', 'replay', '--broker', url, '--topic', topic, '--reason', 'max-attempts')
    expect(first.code).toBe(0)
    expect(first.stdout).toContain('1 replayed, 0 skipped')
    await until(() => replays.length === 1, 5_000, 'the replay')
    expect(replays).toEqual([ids[1]])
    const second = await cli(
      'dead-letters',
      'replay',
      '--broker',
      url,
      '--topic',
      topic,
      '--reason',
      'max-attempts',
      '--json',
    )
    expect(JSON.parse(second.stdout)).toMatchObject({ replayed: 0, skipped: 1 })
    const again = await cli(
      'dead-letters',
      'replay',
      '--broker',
      url,
      '--topic',
      topic,
      '--id',
      ids[1] as string,
      '--again',
    )
    expect(again.stdout).toContain('1 replayed, 0 skipped')
    await until(() => replays.length === 2, 5_000, 'the second replay')
    const listed = await cli(
      'dead-letters',
      'list',
      '--broker',
      url,
      '--topic',
      topic,
      '--status',
      'replayed',
      '--json',
    )
    expect(JSON.parse(listed.stdout).map((e: { id: string }) => e.id)).toEqual([ids[1]])
  })
})
