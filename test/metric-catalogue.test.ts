// Each package's README lists every metric it records (`## Metrics`); this holds the list and the
// source together. What each metric records at run time (values, attribute keys) is checked by each
// package's own metrics test against the same catalogue (expectInCatalogue).
import { describe, expect, it } from 'vitest'
import { readCatalogue, sourceInstruments } from './helpers/metric-catalogue.js'

const PACKAGES = ['packages/logging', 'packages/messaging', 'packages/config-client', 'packages/workflow']

describe.each(PACKAGES)('the metric catalogue of %s', (dir) => {
  const catalogue = readCatalogue(dir)
  const created = sourceInstruments(dir)

  it('lists each metric once, with a unit and a meaning', () => {
    const names = catalogue.map((e) => e.name)
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([])
    for (const entry of catalogue) {
      expect(entry.unit, `${entry.name}: unit`).not.toBe('')
      expect(entry.meaning.length, `${entry.name}: meaning`).toBeGreaterThan(10)
    }
  })

  it('lists every instrument the source creates, as the same instrument with the same unit', () => {
    for (const instrument of created) {
      const entry = catalogue.find((e) => e.name === instrument.name)
      expect(entry, `${instrument.name} (${instrument.file}) is not in ${dir}/README.md`).toBeDefined()
      expect(entry?.instrument, `${instrument.name}: instrument`).toBe(instrument.instrument)
      expect(instrument.unit, `${instrument.name} (${instrument.file}) is created without a unit`).toBeDefined()
      expect(entry?.unit, `${instrument.name}: unit`).toBe(instrument.unit)
    }
  })

  it('lists nothing the source does not create', () => {
    const names = new Set(created.map((i) => i.name))
    expect(catalogue.map((e) => e.name).filter((name) => !names.has(name))).toEqual([])
  })
})
