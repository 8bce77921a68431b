import { describe, expect, it } from 'vitest'
import { checkSubject, consumerNameFor, safeName, streamNameFor } from '../../src/adapters/nats/index.js'

describe('stream and consumer names', () => {
  it('keeps names JetStream accepts as they are', () => {
    expect(streamNameFor('orders')).toBe('BP_orders')
    expect(streamNameFor('orders', 'APP_')).toBe('APP_orders')
    expect(consumerNameFor('billing', 'orders.created', true)).toBe('billing')
  })

  it('replaces what JetStream refuses and adds a hash of the original, so names stay distinct', () => {
    const dotted = streamNameFor('orders.created')
    expect(dotted).toMatch(/^BP_orders_created_[0-9a-f]{8}$/)
    expect(streamNameFor('orders_created')).toBe('BP_orders_created')
    expect(dotted).not.toBe(streamNameFor('orders_created'))
    expect(safeName('a b/c\\d*e>f\u0000')).toMatch(/^a_b_c_d_e_f__[0-9a-f]{8}$/)
    expect(safeName('x.y')).toBe(safeName('x.y'))
  })

  it('names a group consumer after group and topic on a stream shared by several topics', () => {
    const name = consumerNameFor('billing', 'orders.created', false)
    expect(name).toMatch(/^billing_orders_created_[0-9a-f]{8}$/)
    expect(name).not.toBe(consumerNameFor('billing', 'orders.paid', false))
  })

  it('caps long names at 200 characters', () => {
    const long = safeName('t'.repeat(500))
    expect(long.length).toBe(200)
    expect(long).not.toBe(safeName(`${'t'.repeat(499)}u`))
  })

  it('accepts only subjects a message can be published to', () => {
    expect(() => checkSubject('orders.created')).not.toThrow()
    for (const bad of ['', 'orders.*', 'orders.>', 'a..b', 'has space', '.lead']) {
      expect(() => checkSubject(bad), bad).toThrow(/not a NATS subject/)
    }
  })
})
