/** The partitioner and the partition assigner, without a Kafka. */
import kafkajs from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { stickyPartitioner, subscriptionAwareAssigner } from '../../src/adapters/kafka/index.js'

describe('partitions', () => {
  const partitionMetadata = [0, 1, 2, 3].map((partitionId) => ({
    partitionId,
    leader: 1,
    partitionErrorCode: 0,
    replicas: [1],
    isr: [1],
  }))

  it('keeps keyless messages on one partition for a run of 100, then moves to the next', () => {
    const partition = stickyPartitioner()()
    const chosen = Array.from({ length: 250 }, () =>
      partition({ topic: 't', partitionMetadata, message: { value: 'v' } }),
    )
    const first = chosen[0] as number
    expect(new Set(chosen.slice(0, 100))).toEqual(new Set([first]))
    expect(new Set(chosen.slice(100, 200))).toEqual(new Set([(first + 1) % 4]))
    expect(new Set(chosen.slice(200))).toEqual(new Set([(first + 2) % 4]))
  })

  it('sends keyed messages where every Kafka client does (murmur2), and skips partitions without a leader', () => {
    const partition = stickyPartitioner()()
    const byKafkajs = kafkajs.Partitioners.DefaultPartitioner()
    for (const key of ['a', 'b', 'c', 'order-42']) {
      const message = { key, value: 'v' }
      expect(partition({ topic: 't', partitionMetadata, message })).toBe(
        byKafkajs({ topic: 't', partitionMetadata, message }),
      )
    }
    const leaderless = partitionMetadata.map((p) => (p.partitionId === 2 ? p : { ...p, leader: -1 }))
    expect(partition({ topic: 'u', partitionMetadata: leaderless, message: { value: 'v' } })).toBe(2)
  })

  it("assigns each topic's partitions to the members subscribed to it, and only to them", async () => {
    const { MemberMetadata, MemberAssignment } = kafkajs.AssignerProtocol
    const partitionCounts: Record<string, number> = { orders: 4, refunds: 2 }
    const targets: string[][] = []
    const cluster = {
      addMultipleTargetTopics: async (topics: string[]) => void targets.push(topics),
      findTopicPartitionMetadata: (topic: string) =>
        Array.from({ length: partitionCounts[topic] ?? 0 }, (_, partitionId) => ({ partitionId })),
    }
    const assigner = subscriptionAwareAssigner({ cluster, groupId: 'billing', logger: undefined } as never)
    const member = (memberId: string, topics: string[]) => ({
      memberId,
      memberMetadata: MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    })
    const result = await assigner.assign({
      members: [member('m1', ['orders']), member('m2', ['refunds']), member('m3', ['orders', 'refunds'])],
      topics: ['orders'], // kafkajs passes the leader's own topics only
    })
    const owned = Object.fromEntries(
      result.map((r) => [r.memberId, MemberAssignment.decode(r.memberAssignment)?.assignment ?? {}]),
    )
    expect(targets).toEqual([['orders', 'refunds']])
    expect(owned.m1?.refunds).toBeUndefined()
    expect(owned.m2?.orders).toBeUndefined()
    const all = (topic: string) =>
      Object.values(owned)
        .flatMap((a) => a[topic] ?? [])
        .sort()
    expect(all('orders')).toEqual([0, 1, 2, 3])
    expect(all('refunds')).toEqual([0, 1])
    expect(owned.m1?.orders).toHaveLength(2)
    expect(assigner.name).toBe('RoundRobinAssigner')
  })
})
