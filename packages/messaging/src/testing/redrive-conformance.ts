/**
 * Dead-letter redrive as every broker that keeps messages must do it (called by
 * brokerConformance): list and filter dead letters, replay them with their ids to the group that
 * failed them only, skip what was replayed, and list a replay that fails again as a new pending
 * dead letter. A broker without `capabilities.replay` must refuse with `MESSAGING_UNSUPPORTED`.
 */
import { randomUUID } from 'node:crypto'
import { sleep } from '@backplane/internal'
import { type Broker, type DeadLetter, type Message, NonRetryableError, REPLAY } from '@backplane/messaging'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { until } from './until.js'

/** The hooks of brokerConformance this block uses. */
export interface RedriveHooks {
  connect(): Promise<Broker>
  slow?: number
  retry?: number
}

interface Order {
  n: number
  /** How billing fails it: at once, or after its attempts. */
  fail: 'non-retryable' | 'max-attempts' | 'none'
}

const byN = (a: DeadLetter, b: DeadLetter) => (a.data as Order).n - (b.data as Order).n

export function redriveConformance(name: string, hooks: RedriveHooks): void {
  const wait = (ms: number) => ms * (hooks.slow ?? 1)
  const runId = randomUUID().slice(0, 6)
  let attempt = 0

  describe(`dead-letter redrive: ${name}`, { retry: hooks.retry ?? 0 }, () => {
    let broker: Broker
    beforeAll(async () => {
      broker = await hooks.connect()
    })
    afterAll(async () => {
      await broker.close()
    })

    it('refuses on a broker that keeps no messages, with MESSAGING_UNSUPPORTED', async (test) => {
      if (broker.health().capabilities.replay) test.skip()
      await expect(broker.deadLetters(`redrive.none.${runId}`).list()).rejects.toMatchObject({
        code: 'MESSAGING_UNSUPPORTED',
      })
    })

    it('lists and filters dead letters, replays them to the group that failed them only, and skips or lists again what was replayed', async (test) => {
      if (!broker.health().capabilities.replay) test.skip()
      attempt++
      const t = `conf.redrive.${randomUUID().slice(0, 8)}`
      const [billing, audit] = ['billing', 'audit'].map((g) => `${g}-redrive-${runId}-${attempt}`) as [string, string]
      const healed = new Set<number>()
      const replays: Message<Order>[] = []
      const auditSeen: string[] = []
      const plainSeen: string[] = []
      const skipped: { group: string | undefined; replayGroup: string }[] = []
      let deadLettered = 0
      broker.events.on('deadLetter', (e) => e.topic === t && deadLettered++)
      broker.events.on(
        'replaySkipped',
        (e) => e.topic === t && skipped.push({ group: e.group, replayGroup: e.replayGroup }),
      )
      const fast = { maxAttempts: 2, initialDelay: 5, maxDelay: 20, factor: 2, jitter: 'none' as const }
      const subs = await Promise.all([
        broker.subscribe<Order>(
          t,
          (m) => {
            if (m.headers[REPLAY.from] !== undefined) replays.push(m)
            if (healed.has(m.data.n) || m.data.fail === 'none') return
            if (m.data.fail === 'non-retryable') throw new NonRetryableError(`order ${m.data.n} is invalid`)
            throw new Error(`card processor down for ${m.data.n}`)
          },
          { group: billing, retry: fast },
        ),
        broker.subscribe<Order>(t, (m) => void auditSeen.push(m.id), { group: audit }),
        broker.subscribe<Order>(t, (m) => void plainSeen.push(m.id)),
      ])
      await sleep(wait(200))

      const first = await broker.publishBatch<Order>(t, [
        { data: { n: 1, fail: 'non-retryable' } },
        { data: { n: 2, fail: 'non-retryable' } },
        { data: { n: 0, fail: 'none' } },
      ])
      await until(() => deadLettered === 2, wait(15_000), 'the first two dead letters')
      await sleep(5)
      const middle = new Date()
      await sleep(5)
      const second = await broker.publishBatch<Order>(t, [
        { data: { n: 3, fail: 'max-attempts' }, key: 'k3', headers: { tenant: 'Łódź ✓' } },
        { data: { n: 4, fail: 'max-attempts' } },
      ])
      await until(() => deadLettered === 4, wait(15_000), 'all four dead letters')
      await until(() => auditSeen.length === 5 && plainSeen.length === 5, wait(15_000), 'audit and plain copies')
      const ids = [...first.slice(0, 2), ...second].map((r) => r.id)

      const dead = broker.deadLetters(t)
      expect(dead.deadLetterTopic).toBe(`${t}.dlq`)
      // At once: on Kafka each read waits for a group join of its own.
      const [all, byReason, inRange, one] = await Promise.all([
        dead.list(),
        dead.list({ reason: 'max-attempts' }),
        dead.list({ since: middle, until: new Date(Date.now() + 60_000) }),
        dead.list({ id: ids[0] as string }),
      ])
      expect(all.map((e) => e.id).sort()).toEqual([...ids].sort())
      expect([...all].sort(byN).map((e) => [e.reason, e.status, e.group, e.attempts])).toEqual([
        ['non-retryable', 'pending', billing, 1],
        ['non-retryable', 'pending', billing, 1],
        ['max-attempts', 'pending', billing, 2],
        ['max-attempts', 'pending', billing, 2],
      ])
      const three = all.find((e) => (e.data as Order).n === 3) as DeadLetter
      expect(three).toMatchObject({ topic: t, key: 'k3', data: { n: 3, fail: 'max-attempts' } })
      expect(three.error).toContain('card processor down for 3')
      expect(three.headers.tenant).toBe('Łódź ✓')
      expect(Object.keys(three.headers).filter((h) => h.startsWith('backplane-dlq-'))).toEqual([])
      expect(byReason.map((e) => e.id).sort()).toEqual(second.map((r) => r.id).sort())
      expect(inRange.map((e) => e.id).sort()).toEqual(second.map((r) => r.id).sort())
      expect(one.map((e) => e.id)).toEqual([ids[0]])

      // Replay by reason: billing now succeeds; the others handled these ids long ago.
      healed.add(3).add(4)
      const outcome = await dead.replay({ reason: 'max-attempts' })
      expect(outcome).toMatchObject({ replayed: 2, skipped: 0 })
      await until(() => replays.length === 2, wait(15_000), 'the two replays in billing')
      expect(replays.map((m) => m.id).sort()).toEqual(second.map((r) => r.id).sort())
      const replayedThree = replays.find((m) => m.data.n === 3) as Message<Order>
      expect(replayedThree.key).toBe('k3')
      expect(replayedThree.headers).toMatchObject({
        tenant: 'Łódź ✓',
        [REPLAY.from]: `${t}.dlq@${three.position}`,
        [REPLAY.group]: billing,
      })
      expect(Object.keys(replayedThree.headers).filter((h) => h.startsWith('backplane-dlq-'))).toEqual([])
      // Audit (another group) and the plain subscriber ack them unhandled.
      await until(() => skipped.length === 4, wait(15_000), 'the audit and plain copies of the replays to be skipped')
      expect(skipped.filter((s) => s.group === audit)).toHaveLength(2)
      expect(skipped.every((s) => s.replayGroup === billing)).toBe(true)
      expect([auditSeen.length, plainSeen.length]).toEqual([5, 5])

      const again = await dead.replay({ reason: 'max-attempts' })
      expect(again).toMatchObject({ replayed: 0, skipped: 2 })

      // A replay that fails again is a new dead letter, pending; the old one stays replayed.
      await dead.replay({ reason: 'non-retryable' })
      await until(() => deadLettered === 6, wait(15_000), 'the replays failing again')
      const [after, latest, byPosition] = await Promise.all([
        dead.list(),
        dead.get(ids[0] as string),
        dead.get(three.position),
      ])
      expect(after).toHaveLength(6)
      const statuses = (n: number) => after.filter((e) => (e.data as Order).n === n).map((e) => e.status)
      expect(statuses(1)).toEqual(['replayed', 'pending'])
      expect(statuses(3)).toEqual(['replayed'])
      expect(after.filter((e) => e.status === 'replayed').every((e) => e.replayedAt instanceof Date)).toBe(true)
      expect(byPosition).toMatchObject({ id: three.id, position: three.position, status: 'replayed' })
      expect(latest).toMatchObject({ id: ids[0], status: 'pending', reason: 'non-retryable' })
      expect(latest?.headers[REPLAY.group]).toBeUndefined()
      expect(latest?.headers[REPLAY.from]).toMatch(new RegExp(`^${t.replaceAll('.', '\\.')}\\.dlq@`))
      await Promise.all(subs.map((s) => s.close()))
    })
  })
}
