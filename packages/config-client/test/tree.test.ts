/** Layering: schema defaults < sources in order; objects merge, arrays replace. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createConfig, env, file, memory } from '../src/index.js'
import { closeTrackedAfterEach, track } from './helpers/config.js'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'config-client-tree-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))
closeTrackedAfterEach()

describe('layering', () => {
  it('schema defaults < file < env < later sources; objects merge, arrays replace', async () => {
    const schema = z.object({
      name: z.string().default('default-name'),
      hosts: z.array(z.string()).default(['localhost']),
      payment: z.object({
        timeoutMs: z.number().default(5000),
        retries: z.number().default(3),
        currency: z.string().default('EUR'),
      }),
    })
    const json = join(dir, 'layers.json')
    writeFileSync(
      json,
      JSON.stringify({ name: 'from-file', hosts: ['a', 'b', 'c'], payment: { timeoutMs: 1000, retries: 1 } }),
    )
    const config = await track(
      createConfig({
        schema,
        sources: [
          file(json),
          env({ prefix: 'APP_', env: { APP_PAYMENT__RETRIES: '2', APP_HOSTS: 'x,y' } }),
          memory({ payment: { retries: 9 } }),
        ],
      }),
    )
    expect(config.get()).toEqual({
      name: 'from-file',
      hosts: ['x', 'y'],
      payment: { timeoutMs: 1000, retries: 9, currency: 'EUR' },
    })
    expect(config.sourceNames).toEqual([`file:${json}`, 'env:APP_', 'memory'])
  })
})
