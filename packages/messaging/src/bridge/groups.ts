import { z } from 'zod'
import { BridgeError } from './errors.js'

/**
 * Consumer groups the bridge makes for itself start with this; no API parameter may name one.
 * Without it an SSE client could join a webhook subscription's group and take its messages.
 */
export const RESERVED_GROUP_PREFIX = 'backplane-'

const GROUP_RULE = `use 1-128 characters among A-Z a-z 0-9 _ -, not starting with ${RESERVED_GROUP_PREFIX} (the bridge's own groups)`

/** A group a client names (a subscription's `group`, SSE `?group=`). */
export const clientGroupSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,128}$/, GROUP_RULE)
  .refine((g) => !g.startsWith(RESERVED_GROUP_PREFIX), GROUP_RULE)

/** A webhook subscription's own group, when it names none. */
export function webhookGroup(subscriptionId: string): string {
  return `${RESERVED_GROUP_PREFIX}bridge-webhook-${subscriptionId}`
}

/**
 * The broker group of an SSE `?group=`: in a namespace of its own, so SSE streams share
 * messages with each other only, never with a webhook subscription that names the same group.
 */
export function sseGroup(group: string | undefined): string | undefined {
  if (group === undefined) return undefined
  if (!clientGroupSchema.safeParse(group).success) throw new BridgeError(400, 'INVALID_REQUEST', `group: ${GROUP_RULE}`)
  return `${RESERVED_GROUP_PREFIX}sse-${group}`
}
