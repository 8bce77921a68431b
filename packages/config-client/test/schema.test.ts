/** Secret fields of the schema: served, but redacted everywhere they could leak. */
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type ChangeEvent, type ConfigError, createConfig, memory, secret } from '../src/index.js'
import { closeTrackedAfterEach, recordingLogger, track } from './helpers/config.js'

closeTrackedAfterEach()

describe('secrets', () => {
  it('are served by get() and redacted in toJSON, JSON.stringify, inspect, events and logs', async () => {
    const schema = z.object({
      db: z.object({ url: z.string(), password: secret(z.string().min(4)) }),
      tokens: z.array(z.object({ name: z.string(), value: z.string().meta({ secret: true }) })).default([]),
    })
    const source = memory({
      db: { url: 'postgres://db', password: 'hunter22' },
      tokens: [{ name: 't', value: 'tok-1' }],
    })
    const { lines, logger } = recordingLogger()
    const config = await track(createConfig({ schema, sources: [source], logger }))
    expect(config.get('db.password')).toBe('hunter22')
    expect(config.get().tokens[0]?.value).toBe('tok-1')
    expect(config.toJSON()).toEqual({
      db: { url: 'postgres://db', password: '[redacted]' },
      tokens: [{ name: 't', value: '[redacted]' }],
    })
    for (const text of [
      JSON.stringify(config),
      JSON.stringify(config.get()),
      JSON.stringify(config.get('db')),
      inspect(config.get(), { depth: 5 }),
    ]) {
      expect(text).not.toMatch(/hunter22|tok-1/)
      expect(text).toContain('[redacted]')
    }
    const invalid = new Promise<ConfigError>((resolve) => config.once('invalid', resolve))
    source.put('db.password', 'abc')
    expect((await invalid).message).not.toContain('abc')
    const change = new Promise<ChangeEvent<unknown>>((resolve) => config.once('change', resolve))
    source.put('db.password', 'correct-horse')
    const event = await change
    expect(event.changes).toEqual([
      { path: 'db.password', kind: 'update', prev: '[redacted]', next: '[redacted]', secret: true },
    ])
    expect(JSON.stringify(event)).not.toMatch(/hunter22|correct-horse/)
    expect(lines.join('\n')).not.toMatch(/hunter22|correct-horse|tok-1/)
    expect(config.get('db.password')).toBe('correct-horse')
  })
})
