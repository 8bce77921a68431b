/** The package's metrics as an operator sees them, and the README's catalogue of them. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  expectInCatalogue,
  type MetricRecording,
  type RecordedMetric,
  readCatalogue,
  recordMetrics,
  sourceInstruments,
  total,
} from '../../../test/helpers/metric-catalogue.js'
import { createConfig, env, file, memory } from '../src/index.js'
import { closeTrackedAfterEach, track } from './helpers/config.js'
import { waitFor } from './helpers/env.js'
import { AppConfig } from './helpers/schema.js'

const PACKAGE = 'packages/config-client'
const UPDATES = 'backplane.config.updates'
const STALENESS = 'backplane.config.staleness'
const ERRORS = 'backplane.config.source.errors'

let dir: string
let recording: MetricRecording
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'config-client-metrics-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))
beforeEach(() => {
  recording = recordMetrics()
})
closeTrackedAfterEach()
afterEach(async () => {
  await recording.stop()
})

/** The staleness reported for one kind of source; undefined when there is no such series. */
function staleness(recorded: RecordedMetric[], kind: string): number | undefined {
  const metric = recorded.find((m) => m.name === STALENESS)
  return metric?.points.find((p) => p.attributes['config.source'] === kind)?.value
}

describe('config metrics', () => {
  it('counts applied and rejected updates by source kind', async () => {
    const path = join(dir, 'updates.yaml')
    writeFileSync(path, 'payment:\n  timeoutMs: 1000\n')
    const live = memory()
    const config = await track(
      createConfig({ schema: AppConfig, sources: [file(path, { settle: 10 }), live, env({ prefix: 'M_', env: {} })] }),
    )

    for (let i = 1; i <= 5; i++) {
      live.put('payment.retries', i)
      await waitFor(() => config.get('payment.retries') === i, `retries ${i}`)
    }
    let invalid = 0
    config.on('invalid', () => invalid++)
    live.put('payment.retries', 99) // the schema allows 0..10
    await waitFor(() => invalid === 1, 'the rejection')
    live.delete('payment.retries')
    await waitFor(() => config.get('payment.retries') === 3, 'the fix')
    writeFileSync(path, 'payment:\n  timeoutMs: 2000\n')
    await waitFor(() => config.get('payment.timeoutMs') === 2000, 'the file edit')

    const recorded = await recording.collect()
    expect(total(recorded, UPDATES, { outcome: 'applied', 'config.source': 'memory' })).toBe(6)
    expect(total(recorded, UPDATES, { outcome: 'rejected', 'config.source': 'memory' })).toBe(1)
    expect(total(recorded, UPDATES, { outcome: 'applied', 'config.source': 'file' })).toBe(1)
    expect(total(recorded, UPDATES, { 'config.source': 'env' })).toBe(0)
    expect(total(recorded, ERRORS)).toBe(0)
    expect(config.get('payment.retries')).toBe(3)
    expectInCatalogue(recorded, readCatalogue(PACKAGE))
  })

  it('a watched file is current; one that stops parsing grows stale and counts an error, until fixed', async () => {
    const path = join(dir, 'stale.yaml')
    writeFileSync(path, 'payment:\n  timeoutMs: 1000\n')
    const config = await track(
      createConfig({ schema: AppConfig, sources: [file(path, { settle: 10 }), env({ prefix: 'S_', env: {} })] }),
    )
    let errors = 0
    config.on('error', () => errors++)

    let recorded = await recording.collect()
    expect(staleness(recorded, 'file')).toBe(0)
    expect(staleness(recorded, 'env')).toBe(0)

    // Written again every 500 ms until seen: a change the watcher has not armed for yet is lost.
    let lastWrite = 0
    await waitFor(() => {
      if (errors === 0 && Date.now() - lastWrite > 500) {
        lastWrite = Date.now()
        writeFileSync(path, `payment: [not: valid: yaml ${lastWrite}\n`)
      }
      return errors > 0
    }, 'the parse error')
    // The broken file is not served: the file's values are behind, more so the longer it stays broken.
    const first = staleness(await recording.collect(), 'file') ?? 0
    await waitFor(async () => (staleness(await recording.collect(), 'file') ?? 0) > first, 'staleness to grow')
    recorded = await recording.collect()
    expect(errors).toBeGreaterThan(0)
    expect(total(recorded, ERRORS, { 'config.source': 'file', 'error.type': 'CONFIG_SOURCE_FAILED' })).toBe(errors)
    expect(staleness(recorded, 'env')).toBe(0)

    writeFileSync(path, 'payment:\n  timeoutMs: 3000\n')
    await waitFor(() => config.get('payment.timeoutMs') === 3000, 'the fix')
    recorded = await recording.collect()
    expect(staleness(recorded, 'file')).toBe(0)
    expectInCatalogue(recorded, readCatalogue(PACKAGE))
  })

  it('an unwatched file is as old as its read; a closed config stops reporting', async () => {
    const path = join(dir, 'once.json')
    writeFileSync(path, '{"service":"billing"}')
    const config = await track(createConfig({ schema: AppConfig, sources: [file(path, { watch: false })] }))
    const read = Date.now()
    const seconds = await waitFor(async () => staleness(await recording.collect(), 'file'), 'a positive staleness')
    expect(seconds).toBeGreaterThan(0)
    expect(seconds).toBeLessThanOrEqual((Date.now() - read) / 1000 + 0.001)

    await config.close()
    // The SDK keeps exporting a series its callback stopped observing (cumulative), so look from a
    // new provider: only the config still open is there.
    await recording.stop()
    recording = recordMetrics()
    await track(createConfig({ schema: AppConfig, sources: [env({ prefix: 'C_', env: {} })] }))
    const recorded = await recording.collect()
    expect(staleness(recorded, 'env')).toBe(0)
    expect(staleness(recorded, 'file')).toBeUndefined()
  })

  it('catalogue: every instrument of src/ is listed once, as created; nothing else', () => {
    const catalogue = readCatalogue(PACKAGE)
    const created = sourceInstruments(PACKAGE)
    const describe = (e: { name: string; instrument: string }) => `${e.name} ${e.instrument}`
    expect(created.map(describe).sort()).toEqual(catalogue.map(describe).sort())
    expect(new Set(catalogue.map((e) => e.name)).size).toBe(catalogue.length)
    // Units are compared on what the SDK recorded (expectInCatalogue above): the helper's scan stops
    // at the first `}`, which is inside annotation units like `{update}`.
    expect(catalogue.find((e) => e.name === STALENESS)?.unit).toBe('s')
  })
})
