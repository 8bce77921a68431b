/**
 * The built `backplane-messaging` bin as a child process against Kafka (the librdkafka mock):
 * list a dead letter, replay it, and see the group that failed it get it again. Needs the build
 * (`npm test` builds first).
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { until } from '@backplane/messaging/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Broker, createBroker } from '../src/index.js'
import { requireEnv } from './env.js'

const brokers = requireEnv('KAFKA_BROKERS')
// The mock answers a fetch only when maxWaitTime runs out: keep it short.
const url = `kafka://${brokers}?maxWaitTime=100&sessionTimeout=6000`
const bin = fileURLToPath(new URL('../bin/backplane-messaging.js', import.meta.url))
const built = fileURLToPath(new URL('../dist/messaging-cli.js', import.meta.url))

function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...argv], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr })
    })
  })
}

describe('backplane-messaging (built bin, child process, Kafka)', () => {
  const topic = `cli.orders.${randomUUID().slice(0, 8)}`
  let broker: Broker
  let healed = false
  const replays: string[] = []
  let id: string

  beforeAll(async () => {
    if (!existsSync(built)) throw new Error(`${built} is missing: run \`npm run build -w @backplane/messaging\` first`)
    broker = await createBroker(url)
    let dead = 0
    broker.events.on('deadLetter', () => dead++)
    await broker.subscribe(
      topic,
      (m) => {
        if (m.headers['backplane-replayed-from'] !== undefined) replays.push(m.id)
        if (!healed) throw new Error('card processor down')
      },
      { group: `cli-billing-${randomUUID().slice(0, 8)}`, retry: { maxAttempts: 1 } },
    )
    id = (await broker.publish(topic, { total: 42 }, { key: 'o-42' })).id
    await until(() => dead === 1, 20_000, 'the dead letter')
  })
  afterAll(() => broker?.close())

  it('lists the dead letter, replays it, and the group that failed gets it again', async () => {
    const listed = await run('dead-letters', 'list', '--broker', url, '--topic', topic, '--json')
    expect(listed.stderr).toBe('')
    expect(listed.code).toBe(0)
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ id, key: 'o-42', reason: 'max-attempts', status: 'pending', data: { total: 42 } }),
    ])
    healed = true
    const replayed = await run('dead-letters', 'replay', '--broker', url, '--topic', topic)
    expect(replayed.code).toBe(0)
    expect(replayed.stdout).toContain('1 replayed, 0 skipped')
    await until(() => replays.length === 1, 20_000, 'the replay')
    expect(replays).toEqual([id])
    const wrong = await run('dead-letters', 'list', '--broker', url)
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain('--broker and --topic are required')
  }, 60_000)
})
