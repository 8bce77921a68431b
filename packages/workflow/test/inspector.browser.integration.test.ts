/**
 * The inspector's page in a real browser: headless Chromium (Debian's `chromium`, installed by
 * `scripts/services.sh install chromium`, which `npm test` runs) driven by playwright-core. An
 * engine drives a SQLite file; the inspector reads it through a handle of its own. Every run writes
 * a screenshot to .test-results/inspector.png; with BACKPLANE_UPDATE_DOCS=1 it also replaces the
 * README's docs/inspector.png (a test run leaves the committed one alone).
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Engine } from '../src/index.js'
import { sqliteStore } from '../src/stores/sqlite.js'
import { createInspector, type Inspector } from '../src/ui/index.js'
import { HOSTILE, seedOrders, serve, shopOrder } from './helpers/inspector.js'

const dir = mkdtempSync(join(tmpdir(), 'wf-inspector-'))
const db = join(dir, 'workflows.db')
const screenshot = fileURLToPath(new URL('../../../.test-results/inspector.png', import.meta.url))
const docsScreenshot = fileURLToPath(new URL('../../../docs/inspector.png', import.meta.url))
let engine: Engine
let inspector: Inspector
let bare: Inspector
let server: Awaited<ReturnType<typeof serve>>
let browser: Browser
let page: Page
/** Script errors and console errors (a content security policy violation is one) on the page. */
const problems: string[] = []

beforeAll(async () => {
  engine = await seedOrders(sqliteStore(db))
  inspector = createInspector({
    store: sqliteStore(db),
    machines: [shopOrder],
    basePath: '/workflows',
    pollInterval: 250,
  })
  // As `backplane-workflow ui --store` serves it: no definitions at hand.
  bare = createInspector({ store: sqliteStore(db), basePath: '/bare', pollInterval: 250 })
  server = await serve((req, res) => inspector(req, res, () => bare(req, res)))
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' })
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } })
  page.on('pageerror', (error) => problems.push(error.message))
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text())
  })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await inspector?.close()
  await bare?.close()
  await server?.close()
  await engine?.close()
  rmSync(dir, { recursive: true, force: true })
})

const text = (selector: string) => page.locator(selector).first().textContent()

describe('the inspector page in Chromium', () => {
  it('shows the machines with counts per status and state, and the instances', async () => {
    await page.goto(`${server.url}/workflows/`)
    await page.waitForSelector('table.instances tbody tr')
    expect(await text('[data-machine="order v1"] .total')).toBe('5')
    expect(await text('#total')).toBe('5 instances')
    for (const [status, n] of [
      ['running', '3'],
      ['done', '1'],
      ['failed', '1'],
    ])
      expect(await text(`.chip[data-status="${status}"] .n`), status).toBe(n)
    expect(await page.locator('table.instances tbody tr').count()).toBe(5)
    expect(await page.getAttribute('svg.diagram g.node[data-state="shipping"] .badge', 'data-count')).toBe('2')
    expect(await page.locator('svg.diagram g.node[data-state="created"] .badge').count()).toBe(1)
    expect(await page.locator('svg.diagram g.node[data-state="cancelled"] .badge').count()).toBe(0)
    expect(await text('#anywhere')).toContain('CANCEL → cancelled')
    // Filtering by status through its chip.
    await page.click('.chip[data-status="failed"]')
    await expect.poll(() => page.locator('table.instances tbody tr').count()).toBe(1)
    expect(await text('table.instances tbody tr td')).toBe('o-3')
  })

  it('shows one instance: state, timers, history as a timeline, its state highlighted, and writes the screenshot', async () => {
    await page.goto(`${server.url}/workflows/#/instance/o-2`)
    await page.waitForSelector('#history li')
    expect(await text('#instance-state')).toBe('shipping')
    expect(await text('#instance-status')).toBe('running')
    expect(await page.locator('#history > li').count()).toBe(3)
    expect(await page.locator('#history > li .kind').allTextContents()).toEqual(['start', 'event', 'activity.done'])
    expect(await text('#timers')).toMatch(/2h.*in 1h 59m/)
    expect(await page.getAttribute('svg.diagram g.node.current', 'data-state')).toBe('shipping')
    expect(await text('#context')).toContain('"chargeId": "ch-o-2"')
    await page.waitForTimeout(300) // edge label backgrounds are drawn on the next frame
    mkdirSync(join(screenshot, '..'), { recursive: true })
    await page.screenshot({ path: screenshot, fullPage: true })
    if (process.env.BACKPLANE_UPDATE_DOCS === '1') copyFileSync(screenshot, docsScreenshot)
  })

  it('updates live: a transition committed by the engine shows without a reload', async () => {
    await engine.send('o-2', { type: 'DELIVERED' })
    // No waitForFunction: the page's content security policy forbids the eval it needs.
    await expect.poll(() => text('#instance-state'), { timeout: 5000 }).toBe('delivered')
    expect(await page.locator('#history > li').count()).toBe(4)
    expect(await text('#instance-status')).toBe('done')
    expect(await page.getAttribute('svg.diagram g.node.current', 'data-state')).toBe('delivered')
    expect(await text('#timers')).toContain('No timer armed.')
  })

  it('shows why an instance failed and its pending activity', async () => {
    await page.goto(`${server.url}/workflows/#/instance/o-3`)
    await page.waitForSelector('#failure')
    expect(await text('#failure')).toContain('card declined')
    expect(await text('#tasks')).toContain('charge')
  })

  it('shows instance data as text: a context holding markup never runs', async () => {
    await page.goto(`${server.url}/workflows/#/instance/o-5`)
    await page.waitForSelector('#context')
    expect(await text('#context')).toContain(JSON.stringify(HOSTILE).slice(1, -1))
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined()
    expect(await page.locator('main img, main script').count()).toBe(0)
  })

  it('without definitions, draws the transitions seen in the history and says so', async () => {
    await page.goto(`${server.url}/bare/`)
    await page.waitForSelector('#diagram-source')
    expect(await text('#diagram-source')).toContain('transitions seen in the history')
    expect(await page.locator('svg.diagram g.node').count()).toBeGreaterThanOrEqual(4)
    expect(await text('[data-machine="order v1"] .unregistered')).toBe('no definition given')
  })

  it('ran without a script error or a content security policy violation', () => {
    expect(problems).toEqual([])
  })
})
