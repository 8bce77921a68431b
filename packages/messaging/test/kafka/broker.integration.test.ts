import { randomUUID } from 'node:crypto'
import { brokerConformance, until } from '@backplane/messaging/testing'
import { afterAll, describe, expect, it } from 'vitest'
import { type Broker, createBroker, type LoggerLike } from '../../src/index.js'
import { brokerOutage, createFaultProxy } from './fault.js'

const brokers = process.env.KAFKA_BROKERS

const MISSING = `KAFKA_BROKERS is not set: the Kafka tests need the librdkafka mock cluster. Run them with \`npm test\`, or by hand:
  bash scripts/services.sh up kafka && set -a && . <(bash scripts/services.sh env) && set +a && npx vitest run packages/messaging/test/kafka/broker.integration.test.ts`

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

if (!brokers) {
  describe('kafka', () => {
    it('has a Kafka cluster to test against', () => {
      throw new Error(MISSING)
    })
  })
} else {
  // Every connection goes through this proxy, so that `restart` can cut them (see fault.ts).
  const proxy = createFaultProxy()
  const listening = proxy.listen(brokers.split(','))
  // Short sessions so that rejoins after a fault are quick; the mock answers a fetch only when
  // maxWaitTime runs out, so it is short too.
  const settings = { sessionTimeout: 6000, maxWaitTime: 100, socketFactory: proxy.socketFactory }
  const connect = async (
    options: { logger?: LoggerLike; groupId?: (group: string, topic: string) => string } = {},
  ): Promise<Broker> => {
    await listening
    const { groupId, ...rest } = options
    return createBroker(`kafka://${brokers}`, { ...rest, kafka: { ...settings, ...(groupId ? { groupId } : {}) } })
  }
  /** Records kafkajs's "joined the group" lines by Kafka group id. */
  const joinLogger = (joins: string[], rebalances: unknown[] = []): LoggerLike => ({
    debug() {},
    info(obj, msg) {
      const { groupId } = obj as { groupId?: string }
      if (msg === 'Consumer has joined the group' && groupId) joins.push(groupId)
    },
    warn(obj, msg) {
      if (msg?.includes('rebalancing')) rebalances.push(obj)
    },
    error(obj, msg) {
      if (msg?.includes('not aware of this member')) rebalances.push(obj)
    },
  })
  afterAll(() => proxy.close())

  brokerConformance('kafka', {
    connect,
    slow: 3,
    // The librdkafka mock cluster's group coordinator sometimes never completes a rebalance of
    // members joining together (and once aborted on `Assertion !member->resp`,
    // rdkafka_mock_cgrp.c:567): seen in 2 of 4 full runs, never in a run of this file alone.
    retry: 2,
    restart: async () => {
      await brokerOutage(proxy, 8000)
      // The outage is only real if no connection went around the proxy.
      expect(proxy.bypassed).toBe(0)
    },
  })

  describe('kafka adapter', () => {
    it('gives each topic its own Kafka group: a member joining one topic does not rebalance another', async () => {
      const joins: string[] = []
      const broker = await connect({ logger: joinLogger(joins) })
      const group = `billing-${randomUUID().slice(0, 8)}`
      const [orders, refunds] = ['orders', 'refunds'].map((t) => `kafka.${t}.${randomUUID().slice(0, 8)}`) as [
        string,
        string,
      ]
      const got = { orders: new Set<number>(), refunds: new Set<number>() }
      const first = await broker.subscribe<number>(orders, (m) => void got.orders.add(m.data), { group })
      const second = await broker.subscribe<number>(refunds, (m) => void got.refunds.add(m.data), { group })
      const batch = Array.from({ length: 20 }, (_, i) => ({ data: i, key: `k${i}` }))
      await Promise.all([broker.publishBatch(orders, batch), broker.publishBatch(refunds, batch)])
      await until(() => got.orders.size === 20 && got.refunds.size === 20, 15_000, 'both topics')
      // One join each, under ids of their own: the second subscription did not make the first rejoin.
      expect(joins.sort()).toEqual([`${group}/${orders}`, `${group}/${refunds}`].sort())
      await Promise.all([first.close(), second.close()])
      await broker.close()
    })

    it('lets one Kafka group read several topics (groupId mapping): each topic goes to its own subscriptions', async () => {
      const joins: string[] = []
      const broker = await connect({ logger: joinLogger(joins), groupId: (group) => group })
      const group = `multi-${randomUUID().slice(0, 8)}`
      const [orders, refunds] = ['orders', 'refunds'].map((t) => `kafka.${t}.${randomUUID().slice(0, 8)}`) as [
        string,
        string,
      ]
      const got = { orders: new Set<number>(), refunds: new Set<number>() }
      const subs = await Promise.all([
        broker.subscribe<number>(orders, (m) => void got.orders.add(m.data), { group }),
        broker.subscribe<number>(refunds, (m) => void got.refunds.add(m.data), { group }),
      ])
      const batch = Array.from({ length: 20 }, (_, i) => ({ data: i, key: `k${i}` }))
      await Promise.all([broker.publishBatch(orders, batch), broker.publishBatch(refunds, batch)])
      await until(() => got.orders.size === 20 && got.refunds.size === 20, 15_000, 'both topics')
      expect(new Set(joins)).toEqual(new Set([group]))
      await Promise.all(subs.map((s) => s.close()))
      await broker.close()
    })

    it("a 'latest' group that comes back reads what its idle partitions got meanwhile", async () => {
      const broker = await connect()
      const topic = `kafka.latest.${randomUUID().slice(0, 8)}`
      const group = `latest-${randomUUID().slice(0, 8)}`
      const got: number[] = []
      const first = await broker.subscribe<number>(topic, (m) => void got.push(m.data), { group, from: 'latest' })
      // One key: one partition gets a committed offset, the other three none.
      await broker.publish(topic, -1, { key: 'only-one' })
      await until(() => got.length === 1, 20_000, 'the first message')
      await first.close()
      await broker.publishBatch(
        topic,
        Array.from({ length: 40 }, (_, i) => ({ data: i, key: `k${i}` })),
      )
      const second = await broker.subscribe<number>(topic, (m) => void got.push(m.data), { group, from: 'latest' })
      await until(() => got.length === 41, 30_000, 'the 40 published while the group was away')
      expect([...got].sort((a, b) => a - b)).toEqual([-1, ...Array(40).keys()])
      await second.close()
      await broker.close()
    })

    it('keeps a handler slower than sessionTimeout in its group by heartbeating', async () => {
      const joins: string[] = []
      const rebalances: unknown[] = []
      const group = `slow-${randomUUID().slice(0, 8)}`
      const broker = await connect({ logger: joinLogger(joins, rebalances) })
      const topic = `kafka.slow.${randomUUID().slice(0, 8)}`
      const handled: number[] = []
      const sub = await broker.subscribe<number>(
        topic,
        async (m) => {
          if (m.data === 0) await sleep(9000) // 1.5 x sessionTimeout
          handled.push(m.data)
        },
        { group, heartbeatMs: 1000 },
      )
      await broker.publishBatch(topic, [
        { data: 0, key: 'same' },
        { data: 1, key: 'same' },
      ])
      await until(() => handled.length >= 2, 20_000, 'both messages')
      // Had the member been dropped, the commit right after the slow message would fail (logged
      // as "not aware of this member") and the message would come again before the next one.
      await sleep(500)
      expect(handled).toEqual([0, 1])
      expect(joins).toEqual([`${group}/${topic}`])
      expect(rebalances).toEqual([])
      await sub.close()
      await broker.close()
    }, 40_000)
  })
}
