import type { z } from 'zod'

/** A topic name bound to the schema of its messages: publish and subscribe are then typed and checked. */
export interface Topic<T> {
  readonly name: string
  readonly schema: z.ZodType<T>
}

/** `defineTopic('orders.created', OrderCreated)`: publishing validates against the schema; consumers get typed data. */
export function defineTopic<S extends z.ZodType>(name: string, schema: S): Topic<z.output<S>> {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('defineTopic: expected a non-empty topic name')
  return Object.freeze({ name, schema: schema as z.ZodType<z.output<S>> })
}

export type TopicLike<T> = string | Topic<T>

export function topicName(topic: TopicLike<unknown>): string {
  return typeof topic === 'string' ? topic : topic.name
}

export function topicSchema<T>(topic: TopicLike<T>): z.ZodType<T> | undefined {
  return typeof topic === 'string' ? undefined : topic.schema
}

/**
 * What is wrong with a message for its topic's schema, one `path: message` line per issue. Not
 * the options' wording (no "unknown option"): these are the user's own data and schema messages.
 */
export function schemaIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`)
}
