import { isDeepStrictEqual } from 'node:util'
import type { HistoryRecord, InstanceRecord } from '../../src/store-api.js'

/** Every transition the runner's order machine may take, as kind:from>to. */
const ALLOWED = new Set([
  'start:null>created',
  'event:created>paymentPending',
  'activity.done:paymentPending>paid',
  'activity.error:paymentPending>cancelled',
  'timer:paymentPending>cancelled',
  'activity.done:paid>packing',
  'activity.error:paid>refunding',
  'timer:packing>shipping',
  'activity.done:refunding>cancelled',
  'event:shipping>delivered',
])

export interface OrderRunFacts {
  instances: InstanceRecord[]
  history: Map<string, HistoryRecord[]>
  /** Side-effect rows: idempotency key → stored result (the table's key is unique). */
  effects: Map<string, unknown>
  /** What the children printed as committed before they died: instance → seq → state. */
  reported: Map<string, Map<number, string>>
  expected: number
}

/** Problems found (empty when every guarantee holds), and a few counts for the log. */
export function checkOrders(facts: OrderRunFacts): {
  problems: string[]
  final: Record<string, number>
  transitions: number
  activityResults: number
} {
  const problems: string[] = []
  const final: Record<string, number> = {}
  let transitions = 0
  let activityResults = 0
  if (facts.instances.length !== facts.expected)
    problems.push(`expected ${facts.expected} instances, found ${facts.instances.length}`)
  for (const instance of facts.instances) {
    const id = instance.id
    const history = facts.history.get(id) ?? []
    transitions += history.length
    final[instance.state] = (final[instance.state] ?? 0) + 1
    if (instance.status !== 'done' || !['delivered', 'cancelled'].includes(instance.state))
      problems.push(`${id} is ${instance.status} in ${instance.state}, not final`)
    if (history[0]?.kind !== 'start') problems.push(`${id}: history does not begin with its start`)
    const seen = new Set<string>()
    const enteredAt = new Map<string, number>()
    for (const [index, entry] of history.entries()) {
      const previous = history[index - 1]
      if (previous && previous.seq + 1 !== entry.seq)
        problems.push(`${id}: seq ${entry.seq} does not follow seq ${previous.seq} (a gap or a repeat)`)
      // A failed attempt that will run again: on record, but the state stays and the call is the same.
      if (entry.kind === 'activity.attempt') {
        if (entry.from !== entry.to || entry.from !== previous?.to)
          problems.push(`${id}: attempt row seq ${entry.seq} moves from ${entry.from} to ${entry.to}`)
        continue
      }
      const step = `${entry.kind}:${entry.from}>${entry.to}`
      if (!ALLOWED.has(step)) problems.push(`${id}: transition ${step} (seq ${entry.seq}) is not in the machine`)
      if (seen.has(step)) problems.push(`${id}: transition ${step} applied twice`)
      seen.add(step)
      if (previous && (previous.to !== entry.from || previous.seq >= entry.seq))
        problems.push(`${id}: seq ${entry.seq} (${entry.from}) does not follow seq ${previous.seq} (${previous.to})`)
      if (entry.kind === 'activity.done') {
        activityResults++
        const key = `${id}/${entry.from}/${enteredAt.get(entry.from as string)}`
        if (!facts.effects.has(key)) problems.push(`${id}: the committed result of ${key} has no side-effect row`)
        else if (!isDeepStrictEqual((entry.event as { output: unknown }).output, facts.effects.get(key)))
          problems.push(`${id}: the committed result of ${key} is not the one its side effect recorded`)
      }
      enteredAt.set(entry.to, entry.seq)
    }
    if (history.at(-1)?.to !== instance.state)
      problems.push(`${id}: history ends in ${history.at(-1)?.to}, instance is in ${instance.state}`)
    for (const [seq, to] of facts.reported.get(id) ?? []) {
      const entry = history.find((h) => h.seq === seq)
      if (!entry) problems.push(`${id}: transition seq ${seq} to ${to} was reported committed but is lost`)
      else if (entry.to !== to) problems.push(`${id}: seq ${seq} was reported as ${to} but is ${entry.to}`)
    }
  }
  return { problems: problems.slice(0, 50), final, transitions, activityResults }
}
