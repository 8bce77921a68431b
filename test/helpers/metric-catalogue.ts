// The metric catalogue of a package is the `## Metrics` table of its README. These helpers read it,
// find the instruments a package's source creates, and record what the code really emits through an
// in-memory OpenTelemetry SDK, so that tests can hold the three together.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { metrics } from '@opentelemetry/api'
import { DataPointType, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics'
import { expect } from 'vitest'

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)))

export const INSTRUMENTS = [
  'counter',
  'histogram',
  'updowncounter',
  'gauge',
  'observable counter',
  'observable updowncounter',
  'observable gauge',
] as const
export type InstrumentKind = (typeof INSTRUMENTS)[number]

export interface CatalogueEntry {
  name: string
  instrument: InstrumentKind
  unit: string
  attributes: string[]
  meaning: string
}

const CREATE_CALLS: Record<string, InstrumentKind> = {
  createCounter: 'counter',
  createHistogram: 'histogram',
  createUpDownCounter: 'updowncounter',
  createGauge: 'gauge',
  createObservableCounter: 'observable counter',
  createObservableUpDownCounter: 'observable updowncounter',
  createObservableGauge: 'observable gauge',
}

function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((cell) => cell.trim())
}

const ticked = (cell: string): string[] => [...cell.matchAll(/`([^`]*)`/g)].map((m) => m[1] as string)

/** The `## Metrics` table of `<packageDir>/README.md` (packageDir relative to the repo root, or absolute). */
export function readCatalogue(packageDir: string): CatalogueEntry[] {
  const readme = readFileSync(join(resolve(repoRoot, packageDir), 'README.md'), 'utf8')
  const start = readme.search(/^## Metrics\s*$/m)
  if (start === -1) throw new Error(`${packageDir}/README.md has no "## Metrics" section`)
  const section = readme.slice(start).split(/\n## /)[0] as string
  const rows = section.split('\n').filter((line) => line.trim().startsWith('|'))
  const header = cells(rows[0] ?? '')
  const expected = ['metric', 'instrument', 'unit', 'attributes', 'meaning']
  if (header.join('|') !== expected.join('|')) {
    throw new Error(
      `${packageDir}/README.md: the Metrics table's columns are ${header.join(', ')}, expected ${expected.join(', ')}`,
    )
  }
  return rows.slice(2).map((row) => {
    const [metric = '', instrument = '', unit = '', attributes = '', meaning = ''] = cells(row)
    const name = ticked(metric)[0]
    if (name === undefined)
      throw new Error(`${packageDir}/README.md: a Metrics row has no metric name in backticks: ${row}`)
    if (!(INSTRUMENTS as readonly string[]).includes(instrument)) {
      throw new Error(
        `${packageDir}/README.md: ${name}: instrument "${instrument}" is not one of ${INSTRUMENTS.join(', ')}`,
      )
    }
    return {
      name,
      instrument: instrument as InstrumentKind,
      unit: ticked(unit)[0] ?? '',
      attributes: ticked(attributes),
      meaning,
    }
  })
}

export interface SourceInstrument {
  name: string
  instrument: InstrumentKind
  unit: string | undefined
  file: string
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return /\.ts$/.test(name) && !name.endsWith('.d.ts') ? [path] : []
  })
}

/** Every `meter.createX('name', { unit: '...' })` in `<packageDir>/src`. */
export function sourceInstruments(packageDir: string): SourceInstrument[] {
  const root = resolve(repoRoot, packageDir)
  const found: SourceInstrument[] = []
  for (const file of sourceFiles(join(root, 'src'))) {
    const source = readFileSync(file, 'utf8')
    for (const m of source.matchAll(/\.(create\w+)\(\s*['"]([^'"]+)['"]\s*(?:,\s*\{((?:[^{}]|\{[^{}]*\})*)\})?/g)) {
      const instrument = CREATE_CALLS[m[1] as string]
      if (instrument === undefined) continue
      const unit = /\bunit:\s*['"]([^'"]*)['"]/.exec(m[3] ?? '')?.[1]
      found.push({ name: m[2] as string, instrument, unit, file: file.slice(repoRoot.length + 1) })
    }
  }
  return found
}

export interface RecordedPoint {
  attributes: Record<string, unknown>
  /** The sum for counters and up-down counters, the last value for gauges, the sum for histograms. */
  value: number
  /** Histograms only: how many values were recorded. */
  count?: number
}

export interface RecordedMetric {
  name: string
  /** What the SDK can tell of the instrument: `sum` (monotonic or not), `gauge` or `histogram`. */
  family: 'monotonic sum' | 'sum' | 'gauge' | 'histogram'
  unit: string
  attributeKeys: string[]
  points: RecordedPoint[]
}

class CollectingReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

function recorded(resourceMetrics: ResourceMetrics): RecordedMetric[] {
  const out: RecordedMetric[] = []
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      const points: RecordedPoint[] = metric.dataPoints.map((point) => {
        const value = point.value as number | { sum?: number; count: number }
        return typeof value === 'number'
          ? { attributes: { ...point.attributes }, value }
          : { attributes: { ...point.attributes }, value: value.sum ?? 0, count: value.count }
      })
      const family =
        metric.dataPointType === DataPointType.HISTOGRAM
          ? 'histogram'
          : metric.dataPointType === DataPointType.GAUGE
            ? 'gauge'
            : metric.dataPointType === DataPointType.SUM && metric.isMonotonic
              ? 'monotonic sum'
              : 'sum'
      const keys = new Set(points.flatMap((p) => Object.keys(p.attributes)))
      out.push({
        name: metric.descriptor.name,
        family,
        unit: metric.descriptor.unit,
        attributeKeys: [...keys].sort(),
        points,
      })
    }
  }
  return out
}

export interface MetricRecording {
  /** Everything recorded so far (cumulative), one entry per instrument that has data. */
  collect(): Promise<RecordedMetric[]>
  /** Removes the SDK again: the API goes back to its no-op meter. */
  stop(): Promise<void>
}

/** Registers an in-memory SDK meter provider as the global one, until `stop()`. */
export function recordMetrics(): MetricRecording {
  const reader = new CollectingReader()
  const provider = new MeterProvider({ readers: [reader] })
  metrics.disable()
  metrics.setGlobalMeterProvider(provider)
  return {
    async collect() {
      const { resourceMetrics, errors } = await reader.collect()
      if (errors.length > 0) throw errors[0]
      return recorded(resourceMetrics)
    },
    async stop() {
      metrics.disable()
      await provider.shutdown()
    },
  }
}

/** Sum of a metric's points (counters) or count (histograms) whose attributes include `where`. */
export function total(recorded: RecordedMetric[], name: string, where: Record<string, unknown> = {}): number {
  const metric = recorded.find((m) => m.name === name)
  if (metric === undefined) return 0
  return metric.points
    .filter((p) => Object.entries(where).every(([k, v]) => p.attributes[k] === v))
    .reduce((sum, p) => sum + (p.count ?? p.value), 0)
}

const FAMILY: Record<InstrumentKind, RecordedMetric['family']> = {
  counter: 'monotonic sum',
  'observable counter': 'monotonic sum',
  updowncounter: 'sum',
  'observable updowncounter': 'sum',
  gauge: 'gauge',
  'observable gauge': 'gauge',
  histogram: 'histogram',
}

/** Each recorded metric is in the catalogue, as the same kind of instrument, unit and attribute keys. */
export function expectInCatalogue(recorded: RecordedMetric[], catalogue: CatalogueEntry[]): void {
  for (const metric of recorded) {
    const entry = catalogue.find((e) => e.name === metric.name)
    expect(entry, `${metric.name} is recorded but not in the catalogue`).toBeDefined()
    if (entry === undefined) continue
    expect(FAMILY[entry.instrument], `${metric.name}: the catalogue says ${entry.instrument}`).toBe(metric.family)
    expect(metric.unit, `${metric.name}: unit`).toBe(entry.unit)
    const unlisted = metric.attributeKeys.filter((key) => !entry.attributes.includes(key))
    expect(unlisted, `${metric.name}: attributes recorded but not in the catalogue`).toEqual([])
  }
}
