// Type tests for the public generics: `npx vitest --typecheck.only run packages/messaging/test/types.test-d.ts`.
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import {
  type BatchMessage,
  type Broker,
  createBroker,
  createBrokerOver,
  type DedupeStore,
  defineTopic,
  type Handler,
  type Message,
  MessagingError,
  memoryDedupeStore,
  NonRetryableError,
  type PublishResult,
  RetryAfterError,
  type Subscription,
  type Topic,
  type Transport,
} from '../src/index.js'

const Order = z.object({ id: z.string(), total: z.number(), note: z.string().optional() })
type Order = z.output<typeof Order>
const orders = defineTopic('orders.created', Order)
declare const broker: Broker

describe('defineTopic', () => {
  it('infers the payload type from the schema', () => {
    expectTypeOf(orders).toEqualTypeOf<Topic<Order>>()
    expectTypeOf(orders.name).toBeString()
    expectTypeOf(defineTopic('counts', z.number())).toEqualTypeOf<Topic<number>>()
  })

  it('takes the schema output: defaults and transforms apply', () => {
    const withDefault = defineTopic('t', z.object({ n: z.number().default(1) }))
    expectTypeOf(withDefault).toEqualTypeOf<Topic<{ n: number }>>()
    const parsed = defineTopic(
      'dates',
      z.string().transform((s) => new Date(s)),
    )
    expectTypeOf(parsed).toEqualTypeOf<Topic<Date>>()
  })

  it('needs a zod schema', () => {
    // @ts-expect-error a plain object is not a schema
    defineTopic('t', { id: 'string' })
  })
})

describe('broker.publish', () => {
  it('types the payload by the topic', () => {
    expectTypeOf(broker.publish(orders, { id: 'o-1', total: 3 })).resolves.toEqualTypeOf<PublishResult>()
    // @ts-expect-error a field of the wrong type
    void broker.publish(orders, { id: 'o-1', total: '3' })
    // @ts-expect-error a required field missing
    void broker.publish(orders, { id: 'o-1' })
  })

  it('takes anything on a topic named by a string', () => {
    expectTypeOf(broker.publish('raw', new Uint8Array([1]))).resolves.toEqualTypeOf<PublishResult>()
    expectTypeOf(broker.publish('raw', { any: 'thing' })).resolves.toEqualTypeOf<PublishResult>()
  })

  it('checks the options', () => {
    void broker.publish('t', 1, { key: 'k', headers: { a: 'b' } })
    // @ts-expect-error header values are strings
    void broker.publish('t', 1, { headers: { a: 1 } })
  })
})

describe('broker.publishBatch', () => {
  it('types each entry by the topic', () => {
    const entries: BatchMessage<Order>[] = [{ data: { id: 'o-1', total: 1 }, key: 'k' }]
    expectTypeOf(broker.publishBatch(orders, entries)).resolves.toEqualTypeOf<PublishResult[]>()
    // @ts-expect-error data of the wrong type
    void broker.publishBatch(orders, [{ data: { id: 1, total: 1 } }])
  })
})

describe('broker.subscribe', () => {
  it("types the handler's message.data by the topic", () => {
    const subscription = broker.subscribe(orders, (message) => {
      expectTypeOf(message).toEqualTypeOf<Message<Order>>()
      expectTypeOf(message.data).toEqualTypeOf<Order>()
      expectTypeOf(message.data.total).toBeNumber()
      expectTypeOf(message.raw).toEqualTypeOf<Uint8Array>()
      // @ts-expect-error not a field of the topic's schema
      void message.data.customer
    })
    expectTypeOf(subscription).resolves.toEqualTypeOf<Subscription>()
  })

  it('gives unknown data on a topic named by a string, or the type the handler declares', () => {
    void broker.subscribe('raw', (message) => {
      expectTypeOf(message.data).toBeUnknown()
    })
    const handler: Handler<{ n: number }> = (message) => {
      expectTypeOf(message.data.n).toBeNumber()
    }
    void broker.subscribe('typed', handler)
  })

  it('refuses a handler for another payload', () => {
    const numbers: Handler<number> = () => {}
    // @ts-expect-error a handler of numbers on a topic of orders
    void broker.subscribe(orders, numbers)
  })
})

describe('createBroker and createBrokerOver', () => {
  it('resolve to a Broker', () => {
    expectTypeOf(createBroker('memory://t')).resolves.toEqualTypeOf<Broker>()
    expectTypeOf(createBroker('memory://t', { source: '//svc' })).resolves.toEqualTypeOf<Broker>()
    expectTypeOf(createBrokerOver).parameter(0).toEqualTypeOf<Transport>()
    expectTypeOf(createBrokerOver).returns.toEqualTypeOf<Broker>()
  })

  it('check the options', () => {
    // @ts-expect-error not a broker option
    void createBroker('memory://t', { colour: 'red' })
    // @ts-expect-error the URL is a string
    void createBroker(new URL('memory://t'))
  })
})

describe('errors and stores', () => {
  it('narrow with is()', () => {
    const error: unknown = new Error('x')
    if (MessagingError.is(error)) expectTypeOf(error.code).not.toBeAny()
    if (RetryAfterError.is(error)) expectTypeOf(error.delayMs).toBeNumber()
    if (NonRetryableError.is(error)) expectTypeOf(error).toEqualTypeOf<NonRetryableError>()
  })

  it('memoryDedupeStore is a DedupeStore', () => {
    expectTypeOf(memoryDedupeStore()).toEqualTypeOf<DedupeStore>()
    // @ts-expect-error max is a number
    memoryDedupeStore({ max: '10' })
  })
})
