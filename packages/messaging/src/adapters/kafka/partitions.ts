import { randomInt } from 'node:crypto'
import kafkajs, { type ICustomPartitioner, type PartitionAssigner, type PartitionMetadata } from 'kafkajs'

/** Keyless messages sent to one partition in a row: about one Kafka batch of small messages. */
const STICKY_RUN = 100

/**
 * @internal
 * Keyed messages go by murmur2 of the key, as with every Kafka client. Keyless ones stay on one
 * partition for STICKY_RUN messages, then move on, as the Java client has done since Kafka 2.4
 * (KIP-480): fewer, fuller produce requests than kafkajs's message-by-message round robin, and
 * keyless messages sent close together keep their order, as on the other brokers.
 */
export function stickyPartitioner(): ICustomPartitioner {
  return () => {
    const byKey = kafkajs.Partitioners.DefaultPartitioner()
    const runs = new Map<string, { index: number; left: number }>()
    return (args) => {
      const { topic, partitionMetadata, message } = args
      if (message.partition != null || message.key != null) return byKey(args)
      const available = partitionMetadata.filter((p) => p.leader >= 0)
      const candidates = available.length > 0 ? available : partitionMetadata
      let run = runs.get(topic)
      if (!run || run.left === 0) {
        run = { index: run ? run.index + 1 : randomInt(1 << 30), left: STICKY_RUN }
        runs.set(topic, run)
      }
      run.left--
      return (candidates[run.index % candidates.length] as PartitionMetadata).partitionId
    }
  }
}

/**
 * @internal
 * kafkajs's round robin hands every member partitions of the leader's topics only, whatever
 * each member subscribed to: two subscriptions of one group to different topics (a service
 * reading `orders` and `refunds` as group `billing`) would leave a topic unread. This one
 * assigns each topic's partitions round robin among the members subscribed to it, like Java's
 * RoundRobinAssignor. Same protocol name and metadata as kafkajs's, so plain kafkajs members
 * can share the group (the leader's algorithm applies).
 */
export const subscriptionAwareAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'RoundRobinAssigner',
  version: 0,
  async assign({ members }) {
    const { MemberMetadata, MemberAssignment } = kafkajs.AssignerProtocol
    const memberIds = members.map((m) => m.memberId).sort()
    const subscribers = new Map<string, Set<string>>()
    for (const { memberId, memberMetadata } of members) {
      for (const topic of MemberMetadata.decode(memberMetadata)?.topics ?? []) {
        const set = subscribers.get(topic) ?? new Set<string>()
        set.add(memberId)
        subscribers.set(topic, set)
      }
    }
    const topics = [...subscribers.keys()].sort()
    // The leader has metadata for its own topics only.
    await cluster.addMultipleTargetTopics(topics)
    const assignment = new Map<string, Record<string, number[]>>(memberIds.map((id) => [id, {}]))
    let cursor = 0
    for (const topic of topics) {
      const eligible = subscribers.get(topic) as Set<string>
      const partitions = cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId)
      for (const partition of partitions.sort((a, b) => a - b)) {
        while (!eligible.has(memberIds[cursor % memberIds.length] as string)) cursor++
        const owned = assignment.get(memberIds[cursor++ % memberIds.length] as string) as Record<string, number[]>
        owned[topic] = [...(owned[topic] ?? []), partition]
      }
    }
    return [...assignment].map(([memberId, owned]) => ({
      memberId,
      memberAssignment: MemberAssignment.encode({ version: 0, assignment: owned, userData: Buffer.alloc(0) }),
    }))
  },
  protocol({ topics }) {
    return {
      name: 'RoundRobinAssigner',
      metadata: kafkajs.AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    }
  },
})
