/**
 * Type tests of the public generics (compiled, never run): what `defineMachine` infers from the
 * context schema and `init`, the events each kind of transition sees, and how the context type
 * flows through `start`, `get`, `send` and `Instance`.
 */
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import {
  type AfterEvent,
  type DoneEvent,
  defineMachine,
  type Engine,
  type ErrorEvent,
  type Instance,
  type InstancePage,
  type Machine,
  type SendResult,
  type WorkflowEvent,
} from '../src/index.js'
import type { EngineOptions, engineOptionsSchema } from '../src/options.js'

/** The keys of T whose value may not be left out. */
type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T]

const OrderContext = z.object({
  orderId: z.string(),
  amount: z.number(),
  note: z.string().default(''),
})
type OrderContext = z.output<typeof OrderContext>
type OrderInput = z.input<typeof OrderContext>

const order = defineMachine({
  id: 'order',
  context: OrderContext,
  initial: 'created',
  on: { CANCEL: 'cancelled' },
  states: {
    created: {
      on: {
        SUBMIT: {
          target: 'paying',
          guard: (context, event) => {
            expectTypeOf(context).toEqualTypeOf<OrderContext>()
            expectTypeOf(event).toEqualTypeOf<WorkflowEvent>()
            return event.type === 'SUBMIT'
          },
          assign: (context) => ({ note: `submitted ${context.orderId}` }),
        },
      },
    },
    paying: {
      invoke: {
        activity: 'charge',
        input: (context) => ({ amount: context.amount }),
        onDone: {
          target: 'paid',
          assign: (_context, event) => {
            expectTypeOf(event).toEqualTypeOf<DoneEvent>()
            return {}
          },
        },
        onError: {
          target: 'cancelled',
          assign: (_context, event) => {
            expectTypeOf(event).toEqualTypeOf<ErrorEvent>()
            return { note: event.error.message }
          },
        },
      },
      after: {
        '30m': {
          target: 'cancelled',
          assign: (_context, event) => {
            expectTypeOf(event).toEqualTypeOf<AfterEvent>()
            return {}
          },
        },
      },
    },
    paid: { type: 'final' },
    cancelled: { type: 'final' },
  },
})

declare const engine: Engine

describe('defineMachine', () => {
  it('infers the context from the schema output and the input from the schema input', () => {
    expectTypeOf(order).toEqualTypeOf<Machine<OrderContext, OrderInput>>()
    // The default makes `note` optional in the input, present in the context.
    expectTypeOf<OrderInput>().toEqualTypeOf<{ orderId: string; amount: number; note?: string | undefined }>()
    expectTypeOf<OrderContext>().toEqualTypeOf<{ orderId: string; amount: number; note: string }>()
  })

  it('takes the input type from init', () => {
    const fromId = defineMachine({
      id: 'from-id',
      context: OrderContext,
      init: (input: { id: string }) => ({ orderId: input.id, amount: 0 }),
      initial: 'a',
      states: { a: { type: 'final' } },
    })
    expectTypeOf(fromId).toEqualTypeOf<Machine<OrderContext, { id: string }>>()
  })

  it('refuses actions that do not fit the context', () => {
    defineMachine({
      id: 'bad-assign',
      context: OrderContext,
      initial: 'a',
      states: {
        // @ts-expect-error amount is a number
        a: { on: { GO: { assign: () => ({ amount: 'ten' }) } } },
      },
    })
    defineMachine({
      id: 'bad-init',
      context: OrderContext,
      // @ts-expect-error init must return the context's input (orderId is missing)
      init: (input: { id: string }) => ({ amount: input.id.length }),
      initial: 'a',
      states: { a: { type: 'final' } },
    })
    defineMachine({
      id: 'bad-guard',
      context: OrderContext,
      initial: 'a',
      // @ts-expect-error a guard returns a boolean
      on: { GO: { guard: () => 'yes' } },
      states: { a: {} },
    })
  })
})

describe('engine.start', () => {
  it('types the input and the instance from a machine', () => {
    expectTypeOf(engine.start(order, { input: { orderId: 'o-1', amount: 1 } })).toEqualTypeOf<
      Promise<Instance<OrderContext>>
    >()
    // @ts-expect-error the input must fit the machine's input (amount is a number)
    engine.start(order, { input: { orderId: 'o-1', amount: '1' } })
  })

  it('starts by name with the context type the caller gives (unknown by default)', () => {
    expectTypeOf(engine.start('order')).toEqualTypeOf<Promise<Instance<unknown>>>()
    expectTypeOf(engine.start<OrderContext>('order', { input: { any: 'thing' } })).toEqualTypeOf<
      Promise<Instance<OrderContext>>
    >()
    // @ts-expect-error a machine reference is a machine or its id
    engine.start(42)
  })
})

describe('Instance', () => {
  it('carries the context type, unknown by default', () => {
    expectTypeOf<Instance<OrderContext>['context']>().toEqualTypeOf<OrderContext>()
    expectTypeOf<Instance['context']>().toEqualTypeOf<unknown>()
    expectTypeOf(engine.get<OrderContext>('o-1')).toEqualTypeOf<Promise<Instance<OrderContext>>>()
    expectTypeOf(engine.list<OrderContext>()).toEqualTypeOf<Promise<InstancePage<OrderContext>>>()
    const instance = {} as Instance<OrderContext>
    // @ts-expect-error the context has no field total
    instance.context.total
  })
})

describe('engine.send', () => {
  it('resolves with the status and the instance typed by the caller', () => {
    const sent = engine.send<OrderContext>('o-1', { type: 'SUBMIT', id: 'web-1', extra: 1 })
    expectTypeOf(sent).toEqualTypeOf<Promise<SendResult<OrderContext>>>()
    expectTypeOf<SendResult['status']>().toEqualTypeOf<'applied' | 'duplicate' | 'ignored'>()
    expectTypeOf<SendResult<OrderContext>['instance']>().toEqualTypeOf<Instance<OrderContext>>()
    // @ts-expect-error an event needs a type
    engine.send('o-1', { id: 'web-1' })
    // @ts-expect-error unhandledEvents is 'reject' or 'ignore'
    engine.send('o-1', { type: 'SUBMIT' }, { unhandledEvents: 'drop' })
  })
})

describe('EngineOptions', () => {
  it('has the fields of the options schema, each of a type the schema accepts', () => {
    // Written by hand for its per-field docs and its precise types (the schema's custom checks see
    // `unknown`); this keeps the two from drifting apart.
    // The deprecated names (leaseMs, pollMs) are renamed before the schema parses the options.
    type Current = Omit<EngineOptions, 'leaseMs' | 'pollMs'>
    expectTypeOf<keyof Current>().toEqualTypeOf<keyof z.input<typeof engineOptionsSchema>>()
    type SchemaInput = z.input<typeof engineOptionsSchema>
    // `machines` is a readonly array in EngineOptions: the schema reads it without changing it.
    expectTypeOf<Omit<Current, 'machines'>>().toExtend<Omit<SchemaInput, 'machines'>>()
    expectTypeOf<EngineOptions['machines'][number]>().toEqualTypeOf<SchemaInput['machines'][number]>()
    expectTypeOf<RequiredKeys<EngineOptions>>().toEqualTypeOf<RequiredKeys<z.input<typeof engineOptionsSchema>>>()
    expectTypeOf<EngineOptions['leaseMs']>().toEqualTypeOf<EngineOptions['leaseTimeout']>()
    expectTypeOf<EngineOptions['pollMs']>().toEqualTypeOf<EngineOptions['pollInterval']>()
  })
})
