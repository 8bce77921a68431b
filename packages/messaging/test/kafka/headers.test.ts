/** The CloudEvents Kafka binding's header mapping. */
import { describe, expect, it } from 'vitest'
import { fromKafkaHeaders, toKafkaHeaders } from '../../src/adapters/kafka/index.js'

describe('CloudEvents Kafka binding headers', () => {
  it('sends ce-* as ce_* and every value as a string (kafkajs writes it as UTF-8); content-type keeps its name', () => {
    const wire = toKafkaHeaders({ 'ce-id': 'e1', 'ce-specversion': '1.0', 'content-type': 'application/json', t: 'ü' })
    expect(Object.keys(wire)).toEqual(['ce_id', 'ce_specversion', 'content-type', 't'])
    expect(Object.values(wire).every((v) => typeof v === 'string')).toBe(true)
    expect(wire.t).toBe('ü')
  })

  it('reads ce_* back as ce-*, lowercases names, takes the last of a repeated header', () => {
    expect(
      fromKafkaHeaders({
        ce_id: Buffer.from('e1'),
        'Content-Type': Buffer.from('text/plain'),
        Tenant: 't1',
        multi: [Buffer.from('a'), Buffer.from('b')],
        gone: undefined,
      }),
    ).toEqual({ 'ce-id': 'e1', 'content-type': 'text/plain', tenant: 't1', multi: 'b' })
  })

  it('round-trips', () => {
    const headers = { 'ce-id': 'e1', 'ce-source': '//h/p', traceparent: '00-abc-def-01', 'x-y': 'z' }
    expect(fromKafkaHeaders(toKafkaHeaders(headers))).toEqual(headers)
  })
})
