/**
 * Headers a replayed dead letter carries. The consumer reads `group`: a replay for one group is
 * acked and skipped, unhandled, by every other group and by plain subscribers.
 */
export const REPLAY = {
  /** `<deadLetterTopic>@<position>`: the dead letter this message is a replay of. */
  from: 'backplane-replayed-from',
  /** When it was replayed (RFC 3339). */
  at: 'backplane-replayed-at',
  /** The consumer group that failed it: the only one that gets the replay (none: every subscriber). */
  group: 'backplane-replay-group',
} as const

/** The companion topic where replays are recorded: a log cannot delete the dead letter itself. */
export function replayedTopicOf(deadLetterTopic: string): string {
  return `${deadLetterTopic}.redriven`
}

/** CloudEvents `type` of the records on the companion topic. */
export const REPLAYED_TYPE = 'backplane.dead-letter.replayed'
