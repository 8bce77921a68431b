// Crash test in distributed mode (NATS JetStream, PostgreSQL, etcd): SIGKILL the payment service
// and the process that owns the order workflows while orders stream in, restart them, and check
// that every order completes exactly once: no order lost, none charged twice, every transition
// applied once, stock and money consistent.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FlowEnvironment, startFlow } from '../src/flow.js'
import { dropDatabase } from '../src/infra.js'
import type { OrderRun } from '../src/load.js'
import { expectConsistent, runOrders, settledReport } from './helpers.js'
import { type PrivateBroker, privateBroker } from './servers.js'

const ORDERS = 120
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('order flow, distributed, crashes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'order-flow-crash-'))
  const database = `order_flow_test_crash_${process.pid}`
  let broker: PrivateBroker
  let flow: FlowEnvironment
  let run: OrderRun
  const kills: string[] = []

  beforeAll(async () => {
    broker = privateBroker('nats', 42291)
    flow = await startFlow({
      mode: 'distributed',
      broker: 'nats',
      dir,
      servers: broker.servers,
      database,
      settings: {
        'payment.failureRate': 0.1,
        'payment.latencyMs': { min: 20, max: 60 },
        'shipping.deliveryDelay': '1s',
      },
    })
    const processes = flow.cluster?.processes
    const payment = processes?.get('payment')
    const orders = processes?.get('orders')
    run = await runOrders(flow, ORDERS, {
      rate: 30,
      during: async (r) => {
        while (r.placed < 30) await sleep(20)
        await payment?.stop('SIGKILL')
        kills.push(`payment at order ${r.placed}`)
        while (r.placed < 50) await sleep(20)
        await orders?.stop('SIGKILL')
        kills.push(`orders at order ${r.placed}`)
        await sleep(500)
        // While the order API is down the customers retry with the same order ids.
        await Promise.all([payment?.restart(), orders?.restart()])
        while (r.placed < 90) await sleep(20)
        await orders?.stop('SIGKILL')
        await payment?.stop('SIGKILL')
        kills.push(`orders and payment at order ${r.placed}`)
        await Promise.all([orders?.restart(), payment?.restart()])
      },
    })
  }, 300_000)

  afterAll(async () => {
    await flow?.close()
    if (broker && !process.env.ORDER_FLOW_KEEP) {
      await dropDatabase(broker.servers.databaseUrl, database).catch(() => undefined)
      broker.stop()
    }
    if (!process.env.ORDER_FLOW_KEEP) rmSync(dir, { recursive: true, force: true })
    else console.log(`kept ${dir}`)
  }, 120_000)

  it('killed the processes mid-run', () => {
    expect(kills).toHaveLength(3)
    expect(run.placed).toBe(ORDERS)
  })

  it('completes every order exactly once: no loss, no double charge, stock consistent', async () => {
    const report = await settledReport(flow)
    expectConsistent(report, ORDERS)
  })

  it('applied every transition once', async () => {
    for (const order of run.orders.values()) {
      const view = (await (await fetch(`${flow.urls.orders}/orders/${order.id}`)).json()) as {
        history: { kind: string; to: string }[]
      }
      const entered = view.history.filter((h) => h.kind !== 'ignored').map((h) => h.to)
      expect(entered.length, `${order.id}: ${entered.join(' → ')}`).toBe(new Set(entered).size)
      expect(['delivered', 'cancelled']).toContain(entered.at(-1))
    }
  })
})
