import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FlowEnvironment, startFlow } from '../src/flow.js'
import type { OrderRun } from '../src/load.js'
import { expectConsistent, expectOneTrace, runOrders, settledReport } from './helpers.js'

describe('order flow, embedded (memory://, SQLite, config file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'order-flow-embedded-'))
  let flow: FlowEnvironment
  let run: OrderRun

  beforeAll(async () => {
    // No declined cards at first: 17 of the first 70 orders want the limited edition (15 in stock),
    // so at least 2 are paid and then refunded.
    flow = await startFlow({ mode: 'embedded', dir, settings: { 'payment.failureRate': 0 } })
    run = await runOrders(flow, 80, {
      // Hot reload: from order 70 on, every card is declined. Placing pauses before order 70 until
      // the first 70 are past payment, so a slow machine cannot charge them after the change.
      beforePlacing: async (index, orders) => {
        if (index !== 70) return
        const unpaid = () => [...orders.values()].filter((o) => o.state === 'created' || o.state === 'paymentPending')
        for (const deadline = Date.now() + 30_000; orders.size < 70 || unpaid().length > 0; ) {
          if (Date.now() > deadline) throw new Error(`orders still unpaid: ${unpaid().map((o) => o.id)}`)
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
        await flow.setConfig('payment.failureRate', 1)
        // The file is re-read within ~50 ms; the pause leaves room for a loaded machine.
        await new Promise((resolve) => setTimeout(resolve, 1000))
      },
    })
  })
  afterAll(async () => {
    await flow?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('ends every order in a final state with charges, stock and read model consistent', async () => {
    const report = await settledReport(flow)
    expectConsistent(report, 80)
    expect(report.byState.delivered).toBeGreaterThan(0)
    // The limited edition runs out: paid orders beyond its stock are refunded by the saga.
    expect(report.refunded).toBeGreaterThanOrEqual(2)
    const outOfStock = [...run.orders.values()].filter((o) => o.reason?.startsWith('out of stock'))
    expect(outOfStock.length).toBe(report.refunded)
  })

  it('applies the configuration change while running', () => {
    const orders = [...run.orders.values()]
    expect(orders.filter((o) => o.index < 70 && o.reason === 'card declined')).toEqual([])
    // Placed after the change was applied: every one sees it.
    const late = orders.filter((o) => o.index >= 70)
    expect(late.length).toBe(10)
    expect(late.every((o) => o.state === 'cancelled' && o.reason === 'card declined')).toBe(true)
  })

  it('serves the API: order with its history, list by state, cancellation rules, validation', async () => {
    const delivered = [...run.orders.values()].find((o) => o.state === 'delivered')
    const order = (await (await fetch(`${flow.urls.orders}/orders/${delivered?.id}`)).json()) as {
      state: string
      traceId: string
      history: { to: string }[]
    }
    expect(order.state).toBe('delivered')
    expect(order.traceId).toMatch(/^[0-9a-f]{32}$/)
    expect(order.history.map((h) => h.to)).toEqual([
      'created',
      'paymentPending',
      'paid',
      'stockReserved',
      'shipping',
      'delivered',
    ])
    const list = (await (await fetch(`${flow.urls.orders}/orders?state=delivered&limit=1000`)).json()) as {
      orders: { state: string }[]
    }
    expect(list.orders.length).toBe((await settledReport(flow)).byState.delivered)
    expect(new Set(list.orders.map((o) => o.state))).toEqual(new Set(['delivered']))

    const cancel = await fetch(`${flow.urls.orders}/orders/${delivered?.id}/cancel`, { method: 'POST' })
    expect(cancel.status).toBe(409)
    expect(((await cancel.json()) as { error: { code: string } }).error.code).toBe('ORDER_NOT_CANCELLABLE')
    expect((await fetch(`${flow.urls.orders}/orders/nope`)).status).toBe(404)

    const bad = await fetch(`${flow.urls.orders}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'c', items: [{ sku: 'unicorn', qty: 0 }] }),
    })
    expect(bad.status).toBe(400)
    const error = (await bad.json()) as { error: { code: string; details: string[] } }
    expect(error.error.code).toBe('INVALID_REQUEST')
    expect(error.error.details.join('\n')).toMatch(/items\.0\.qty/)
    expect(error.error.details.join('\n')).toMatch(/items\.0\.sku: unknown SKU/)
    expect((await fetch(`${flow.urls.orders}/orders`, { method: 'POST', body: '{' })).status).toBe(415)

    const sales = (await (await fetch(`${flow.urls.analytics}/analytics/sales?period=day`)).json()) as {
      buckets: { orders: number; revenueCents: number }[]
    }
    expect(sales.buckets.reduce((n, b) => n + b.orders, 0)).toBe(list.orders.length)
    expect((await fetch(`${flow.urls.analytics}/analytics/sales?period=week`)).status).toBe(400)
  })

  it('cancels an order before payment and voids the charge', async () => {
    await flow.setConfig('payment.latencyMs', { min: 300, max: 300 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    const placed = await fetch(`${flow.urls.orders}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'cancel-me', customerId: 'c-1', items: [{ sku: 'mug', qty: 1 }] }),
    })
    expect(placed.status).toBe(201)
    const cancel = await fetch(`${flow.urls.orders}/orders/cancel-me/cancel`, { method: 'POST' })
    expect(cancel.status).toBe(202)
    const deadline = Date.now() + 10_000
    let state = ''
    while (Date.now() < deadline && state !== 'cancelled') {
      state = ((await (await fetch(`${flow.urls.orders}/orders/cancel-me`)).json()) as { state: string }).state
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(state).toBe('cancelled')
    expectConsistent(await settledReport(flow), 81)
  })

  it('follows one trace id from the HTTP request through every service’s log files', async () => {
    await expectOneTrace(flow, run)
  })
})
