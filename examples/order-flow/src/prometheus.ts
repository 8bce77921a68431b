// A Prometheus server as the flow uses it: it tells Prometheus where its processes' `/metrics` are
// (a file_sd file: the ports are chosen at start, Prometheus re-reads the directory by itself), and
// reads numbers back over the HTTP API.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface PrometheusTargets {
  /** Prometheus's base URL (`http://127.0.0.1:49090`). */
  readonly url: string
  /** The `run` label every target of this flow carries: queries select one run with it. */
  readonly run: string
  /** How many targets are registered. */
  readonly count: number
  /** Takes the targets out of Prometheus's list (it stops scraping them within a second). */
  remove(): void
}

/**
 * Writes `<dir>/order-flow-<run>.json` listing `metrics` (name → `/metrics` URL), each target with
 * the labels `service` (its name) and `run`.
 */
export function registerTargets(
  prometheusUrl: string,
  dir: string,
  run: string,
  metrics: ReadonlyMap<string, string>,
): PrometheusTargets {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `order-flow-${run}.json`)
  const groups = [...metrics].map(([service, url]) => ({ targets: [new URL(url).host], labels: { service, run } }))
  // Written whole then renamed: Prometheus watches the directory and must never read half a file.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(groups, null, 2)}\n`)
  renameSync(`${file}.tmp`, file)
  return { url: prometheusUrl, run, count: groups.length, remove: () => rmSync(file, { force: true }) }
}

export interface Sample {
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** An instant query (`/api/v1/query`); a vector result as samples, a scalar as one sample without labels. */
export async function queryPrometheus(url: string, promql: string, time?: Date): Promise<Sample[]> {
  const params = new URLSearchParams({ query: promql })
  if (time) params.set('time', String(time.getTime() / 1000))
  const response = await fetch(`${url}/api/v1/query?${params}`)
  const body = (await response.json()) as {
    status: string
    error?: string
    data?: { resultType: string; result: unknown }
  }
  if (body.status !== 'success' || !body.data)
    throw new Error(`Prometheus: ${body.error ?? response.status} (${promql})`)
  if (body.data.resultType === 'scalar') {
    const [, value] = body.data.result as [number, string]
    return [{ labels: {}, value: Number(value) }]
  }
  return (body.data.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({
    labels: r.metric,
    value: Number(r.value[1]),
  }))
}

/** The sum of a query's samples (0 when it has none: a counter never incremented has no series). */
export async function queryNumber(url: string, promql: string, time?: Date): Promise<number> {
  return (await queryPrometheus(url, promql, time)).reduce((sum, s) => sum + s.value, 0)
}

/**
 * Waits until Prometheus has scraped every target of the run successfully after `after`: its
 * counters then include everything the processes had counted by then.
 */
export async function waitForScrape(targets: PrometheusTargets, after: Date, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const selector = `up{run="${targets.run}"}`
  for (;;) {
    const [scraped, up] = await Promise.all([
      queryPrometheus(targets.url, `timestamp(${selector})`),
      queryPrometheus(targets.url, selector),
    ])
    const fresh = scraped.filter((s) => s.value * 1000 > after.getTime()).length
    const answering = up.filter((s) => s.value === 1).length
    if (fresh === targets.count && answering === targets.count) return
    if (Date.now() > deadline)
      throw new Error(
        `Prometheus scraped ${fresh} of ${targets.count} targets of run ${targets.run} since ${after.toISOString()} (${answering} up)`,
      )
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}
