import { describe, expect, it } from 'vitest'
import { randomUUID } from '../src/uuid.js'

describe('message ids', () => {
  it('are random version 4 UUIDs, unique across many refills of the entropy buffer', () => {
    const ids = Array.from({ length: 5000 }, () => randomUUID())
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })
})
