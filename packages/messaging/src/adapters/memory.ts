import {
  type ConnectionState,
  type DeliveryHandler,
  MessagingError,
  type ScannedMessage,
  type Transport,
  type TransportDelivery,
  type TransportEvents,
  type TransportMessage,
  type TransportSubscribeOptions,
  type TransportSubscription,
} from '@backplane/messaging'
import { EventEmitter } from 'eventemitter3'

/**
 * An in-process broker: topics are logs in memory, consumer groups keep a cursor and redeliver
 * what was released, keyed messages always go to the same member of a group (order per key,
 * like Kafka partitions). Nothing survives the process. Brokers created with the same
 * `memory://name` in one process share one bus; `memory://` is the process's default bus.
 */

// The core's direct way (packages/messaging/src/consumer.ts, DIRECT and ENDED): a delivery
// handler that carries DIRECT takes a delivery without a promise and tells it by ENDED that the
// core is done with it. The same symbols by name: this adapter is built apart from the core.
const DIRECT = Symbol.for('@backplane/messaging/deliver-direct')
const ENDED = Symbol.for('@backplane/messaging/delivery-ended')

type DirectHandler = (delivery: MemoryDelivery) => void

interface Member {
  deliver: DeliveryHandler
  /** The core's direct way in, when its handler offers one. */
  direct: DirectHandler | undefined
  /** What ends a delivery to this member: bound once, not per delivery. */
  done: () => void
  /** False once the member's own transport closed (the bus and the group outlive it). */
  open: () => boolean
  window: number
  inFlight: number
  idle: (() => void) | undefined
}

interface Group {
  cursor: number
  redeliver: { message: TransportMessage; redeliveries: number }[]
  members: Member[]
  roundRobin: number
  scheduled: boolean
  /** In `pump`: a delivery that ends at once leaves the next to the loop, not a deeper call. */
  pumping: boolean
  /** A pump is queued as a microtask (after a publish). */
  soon: boolean
  /** Anonymous groups (plain subscribers) go away with their only member. */
  anonymous: boolean
}

interface TopicLog {
  /** Offset of messages[0]: what has been trimmed away before it. */
  base: number
  messages: TransportMessage[]
  groups: Map<string, Group>
}

interface Bus {
  topics: Map<string, TopicLog>
  anonymous: number
  /** Deliveries in flight on the bus, through any of its brokers: handlers still running. */
  running: number
}

const BUSES_KEY = Symbol.for('@backplane/messaging/memory-buses')
const buses: Map<string, Bus> = ((globalThis as Record<symbol, unknown>)[BUSES_KEY] as Map<string, Bus>) ?? new Map()
;(globalThis as Record<symbol, unknown>)[BUSES_KEY] = buses

// Trimming copies the log: it waits until this many messages can go at once.
const TRIM_MIN = 1024

// Deliveries in one uninterrupted run of promise callbacks before yielding to I/O and timers.
const DELIVERIES_PER_TURN = 512

function hashKey(key: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

function busNamed(name: string): Bus {
  let bus = buses.get(name)
  if (!bus) {
    bus = { topics: new Map(), anonymous: 0, running: 0 }
    buses.set(name, bus)
  }
  return bus
}

function topicOf(bus: Bus, topic: string): TopicLog {
  let log = bus.topics.get(topic)
  if (!log) {
    log = { base: 0, messages: [], groups: new Map() }
    bus.topics.set(topic, log)
  }
  return log
}

// Settling a memory delivery is synchronous: one settled promise serves every call (a promise
// cannot be changed by whoever awaits it), instead of one allocation per message.
const settled: Promise<void> = Promise.resolve()

/**
 * One delivery; a class rather than closures, since the memory broker makes millions of them.
 * Fields are `declare`d and set once in the constructor (declared fields are set twice).
 */
class MemoryDelivery implements TransportDelivery {
  declare readonly topic: string
  declare readonly key: string | undefined
  declare readonly headers: Record<string, string>
  declare readonly value: Uint8Array
  declare readonly redeliveries: number
  declare private readonly message: TransportMessage
  declare private readonly group: Group
  declare private readonly member: Member
  declare private settled: boolean

  constructor(message: TransportMessage, redeliveries: number, group: Group, member: Member) {
    this.topic = message.topic
    this.key = message.key
    this.headers = message.headers
    this.value = message.value
    this.redeliveries = redeliveries
    this.message = message
    this.group = group
    this.member = member
    this.settled = false
  }

  /** The core is done with it (direct way); `failed`: it could not even release it. */
  [ENDED](failed: boolean): void {
    if (failed) void this.release()
    this.member.done()
  }

  ack(): Promise<void> {
    this.settled = true
    return settled
  }

  release(): Promise<void> {
    if (!this.settled) this.group.redeliver.push({ message: this.message, redeliveries: this.redeliveries + 1 })
    this.settled = true
    return settled
  }

  heartbeat(): Promise<void> {
    return settled
  }
}

export interface MemoryTransportOptions {
  /** Name of the in-process bus; brokers with the same name share topics. Default 'default'. */
  name?: string
  /**
   * Messages kept per topic for groups that start later with `from: 'earliest'`. Default 1,000:
   * a kept message outlives the young generation, and at 10,000 the garbage collector's copying
   * of them cost a fifth of the throughput.
   */
  retain?: number
}

export function createMemoryTransport(options: MemoryTransportOptions = {}): Transport {
  const bus = busNamed(options.name ?? 'default')
  const retain = options.retain ?? 1_000
  const events = new EventEmitter<TransportEvents>()
  let state: ConnectionState = 'connected'
  let deliveriesThisTurn = 0
  let turnReset = false

  function startTurn(): void {
    if (turnReset) return
    turnReset = true
    setImmediate(() => {
      deliveriesThisTurn = 0
      turnReset = false
    })
  }

  function schedule(log: TopicLog, group: Group): void {
    if (group.scheduled) return
    group.scheduled = true
    setImmediate(() => {
      group.scheduled = false
      pump(log, group)
    })
  }

  /**
   * Delivers what was just published once the publisher's code stops (a microtask), not on the
   * next turn: a publisher that never yields to I/O would otherwise queue everything first, and
   * every queued message would be copied through the young generation.
   */
  function scheduleSoon(log: TopicLog, group: Group): void {
    if (group.soon) return
    group.soon = true
    queueMicrotask(() => {
      group.soon = false
      pump(log, group)
    })
  }

  /**
   * Drops what no group needs any more, keeping `retain` messages for groups that start from the
   * earliest. `upTo` bounds the lowest cursor (the cursor of the group that just advanced): it
   * runs after every delivery, so it first rules out, without walking the groups, the common
   * case where too little could go to be worth copying the log.
   */
  function trim(log: TopicLog, upTo = log.base + log.messages.length): void {
    const end = log.base + log.messages.length
    const most = Math.min(upTo, end - retain) - log.base
    if (most <= TRIM_MIN || most * 2 <= log.messages.length) return
    let lowest = upTo
    for (const group of log.groups.values()) lowest = Math.min(lowest, group.cursor)
    const keepFrom = Math.min(lowest, end - retain)
    const drop = keepFrom - log.base
    if (drop > TRIM_MIN && drop * 2 > log.messages.length) {
      log.messages = log.messages.slice(drop)
      log.base = keepFrom
    }
  }

  function memberFor(group: Group, key: string | undefined): Member | undefined {
    const { members } = group
    if (members.length === 0) return undefined
    if (key !== undefined) return members[hashKey(key) % members.length]
    for (let i = 0; i < members.length; i++) {
      const member = members[(group.roundRobin + i) % members.length] as Member
      if (member.inFlight < member.window) {
        group.roundRobin = (group.roundRobin + i + 1) % members.length
        return member
      }
    }
    return undefined
  }

  function pump(log: TopicLog, group: Group): void {
    if (group.pumping) return
    group.pumping = true
    try {
      pumpLoop(log, group)
    } finally {
      group.pumping = false
    }
  }

  function pumpLoop(log: TopicLog, group: Group): void {
    for (;;) {
      if (deliveriesThisTurn >= DELIVERIES_PER_TURN) {
        startTurn()
        schedule(log, group)
        return
      }
      // Released messages first, then the log (no object per delivery for the common case).
      const again = group.redeliver[0]
      const message = again ? again.message : log.messages[group.cursor - log.base]
      if (!message) return
      const member = memberFor(group, message.key)
      // The member that owns this key is busy: wait for it, so the key's order holds.
      // Checked per member: a broker that published and closed at once still gets its messages to
      // the other brokers of the bus.
      if (!member?.open() || member.inFlight >= member.window) return
      if (again) group.redeliver.shift()
      else group.cursor++
      deliveriesThisTurn++
      startTurn()
      deliver(log, group, member, message, again ? again.redeliveries : 0)
    }
  }

  function deliver(log: TopicLog, group: Group, member: Member, message: TransportMessage, redeliveries: number): void {
    member.inFlight++
    bus.running++
    const delivery = new MemoryDelivery(message, redeliveries, group, member)
    if (member.direct) {
      member.direct(delivery)
      return
    }
    member.deliver(delivery).then(
      () => done(log, group, member),
      () => {
        // The core settles every delivery; a rejection here is a bug upstream: keep the message.
        void delivery.release()
        done(log, group, member)
      },
    )
  }

  function done(log: TopicLog, group: Group, member: Member): void {
    member.inFlight--
    bus.running--
    if (member.inFlight === 0) member.idle?.()
    pump(log, group)
    if (group.redeliver.length > 0) schedule(log, group)
    trim(log, group.cursor)
  }

  return {
    system: 'memory',
    capabilities: { durable: false, replay: true, ordering: 'key', atLeastOnce: true },
    events,
    state: () => state,

    async publish(messages: TransportMessage[]): Promise<void> {
      if (state === 'closed') throw new MessagingError('MESSAGING_CLOSED', 'the memory broker is closed')
      // A batch is nearly always one topic: look its log up once, not once per message.
      const touched: TopicLog[] = []
      const added: number[] = []
      let topic: string | undefined
      let log: TopicLog | undefined
      let at = -1
      for (const message of messages) {
        if (log === undefined || message.topic !== topic) {
          topic = message.topic
          log = topicOf(bus, topic)
          at = touched.indexOf(log)
          if (at === -1) at = touched.push(log) - 1
        }
        log.messages.push(message)
        added[at] = (added[at] ?? 0) + 1
      }
      // A publisher outside every handler sets the pace: what it adds, each group may take before
      // the turn ends, so a publisher that never yields does not pile messages up. A handler's own
      // publishes earn nothing: handlers that publish to each other would never let the turn end.
      const credit = bus.running === 0
      for (const [i, log] of touched.entries()) {
        for (const group of log.groups.values()) {
          if (credit) deliveriesThisTurn -= added[i] as number
          scheduleSoon(log, group)
        }
        // A topic nobody reads (a dead-letter topic, say) is trimmed here, or it would grow forever.
        trim(log)
      }
    },

    async subscribe(
      topic: string,
      opts: TransportSubscribeOptions,
      deliver: DeliveryHandler,
    ): Promise<TransportSubscription> {
      const log = topicOf(bus, topic)
      const anonymous = opts.group === undefined
      const groupName = opts.group ?? `\u0000subscriber-${++bus.anonymous}`
      let group = log.groups.get(groupName)
      if (!group) {
        const end = log.base + log.messages.length
        group = {
          cursor: opts.from === 'earliest' ? log.base : end,
          redeliver: [],
          members: [],
          roundRobin: 0,
          scheduled: false,
          pumping: false,
          soon: false,
          anonymous,
        }
        log.groups.set(groupName, group)
      }
      const owner = group
      const member: Member = {
        deliver,
        direct: (deliver as { [DIRECT]?: DirectHandler })[DIRECT],
        done: () => done(log, owner, member),
        open: () => state !== 'closed',
        window: opts.maxInFlight * 2 + 8,
        inFlight: 0,
        idle: undefined,
      }
      group.members.push(member)
      schedule(log, group)
      return {
        async close() {
          owner.members = owner.members.filter((m) => m !== member)
          if (member.inFlight > 0) await new Promise<void>((resolve) => (member.idle = resolve))
          if (owner.anonymous) log.groups.delete(groupName)
          else if (owner.members.length > 0) schedule(log, owner)
        },
      }
    },

    async *scan(topic, { signal }): AsyncGenerator<ScannedMessage> {
      const log = bus.topics.get(topic)
      if (!log) return
      const end = log.base + log.messages.length
      // By absolute offset: trimming may move `base` between two steps of the caller.
      for (let offset = log.base; offset < end; offset++) {
        signal?.throwIfAborted()
        if (offset < log.base) {
          offset = log.base
          if (offset >= end) return
        }
        const message = log.messages[offset - log.base] as TransportMessage
        yield { ...message, position: String(offset) }
      }
    },

    async close(): Promise<void> {
      state = 'closed'
    },
  }
}

/** For createBroker('memory://name'). */
export async function createTransport(url: URL, options: { settings: Record<string, unknown> }): Promise<Transport> {
  const name = url.host || url.pathname.replace(/^\/+/, '') || 'default'
  return createMemoryTransport({ name, ...(options.settings as MemoryTransportOptions) })
}
