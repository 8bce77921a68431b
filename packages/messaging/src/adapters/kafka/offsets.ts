import type { LoggerLike } from '@backplane/messaging'
import type { Consumer } from 'kafkajs'
import { asError } from './connection.js'

/**
 * Offsets of acked messages, committed in the background rather than after every batch:
 * kafkajs's autoCommit awaits an OffsetCommit at the end of each partition's batch before it
 * fetches again, which bounds a consumer to one commit round trip per batch. A commit holds only
 * offsets whose message (and every one before it in the partition) was acked, so it never
 * covers an unhandled message; what is acked but not yet committed when a process crashes is
 * delivered again (at least once). Graceful close and rebalances commit first.
 */
export function offsetCommitter(
  topic: string,
  consumer: () => Consumer | undefined,
  logger: LoggerLike,
  context: object,
) {
  // partition -> offset of the last acked message (committed as offset + 1, Kafka's next to read)
  let pending = new Map<number, string>()
  let running: Promise<void> | undefined

  async function commit(): Promise<void> {
    const current = consumer()
    if (pending.size === 0 || !current) return
    const batch = pending
    pending = new Map()
    const offsets = [...batch].map(([partition, offset]) => ({
      topic,
      partition,
      offset: (BigInt(offset) + 1n).toString(),
    }))
    try {
      await current.commitOffsets(offsets)
    } catch (error) {
      // Kept for the next commit unless a later offset was acked meanwhile; the group may
      // have moved on (a rebalance), in which case the next join drops partitions we lost.
      for (const [partition, offset] of batch) if (!pending.has(partition)) pending.set(partition, offset)
      logger.debug({ ...context, err: asError(error).message }, 'offset commit failed; retried at the next one')
    }
  }

  return {
    /** The message at `offset` was acked, and every one before it in `partition`. */
    acked(partition: number, offset: string): void {
      pending.set(partition, offset)
    },
    /** Commits what was acked; one commit at a time, so offsets never go backwards. */
    async flush(): Promise<void> {
      while (running) await running
      running = commit().finally(() => {
        running = undefined
      })
      await running
    },
    /** After a rebalance: offsets of partitions no longer ours are not ours to commit. */
    assigned(partitions: number[] | undefined): void {
      const owned = new Set(partitions ?? [])
      for (const partition of pending.keys()) if (!owned.has(partition)) pending.delete(partition)
    },
  }
}

export type OffsetCommitter = ReturnType<typeof offsetCommitter>
