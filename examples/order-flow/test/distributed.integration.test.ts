// Distributed mode end to end: six service processes and the standalone bridge, over NATS
// JetStream and over Kafka, with PostgreSQL and etcd.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FlowEnvironment, startFlow } from '../src/flow.js'
import { dropDatabase } from '../src/infra.js'
import type { OrderRun } from '../src/load.js'
import { expectConsistent, expectOneTrace, runOrders, settledReport } from './helpers.js'
import { type PrivateBroker, privateBroker } from './servers.js'

describe.each([
  ['nats', 42281],
  ['kafka', 0],
] as const)('order flow, distributed on %s', (kind, port) => {
  const dir = mkdtempSync(join(tmpdir(), `order-flow-${kind}-run-`))
  const database = `order_flow_test_${kind}_${process.pid}`
  let broker: PrivateBroker
  let flow: FlowEnvironment
  let run: OrderRun

  beforeAll(async () => {
    broker = privateBroker(kind, port)
    flow = await startFlow({
      mode: 'distributed',
      broker: kind,
      dir,
      servers: broker.servers,
      database,
      settings: { 'payment.failureRate': 0.1, 'shipping.deliveryDelay': '1s' },
    })
    run = await runOrders(flow, 60, { rate: 30 })
  }, 240_000)

  afterAll(async () => {
    await flow?.close()
    if (broker) {
      await dropDatabase(broker.servers.databaseUrl, database).catch(() => undefined)
      broker.stop()
    }
    rmSync(dir, { recursive: true, force: true })
  }, 120_000)

  it('ends every order in a final state with charges, stock and read model consistent', async () => {
    const report = await settledReport(flow)
    expectConsistent(report, 60)
    expect(report.byState.delivered).toBeGreaterThan(0)
  })

  it('runs each service in its own process', () => {
    const pids = [...(flow.cluster?.processes.values() ?? [])].map((p) => p.pid)
    expect(pids.length).toBe(7)
    expect(new Set(pids).size).toBe(7)
    expect(pids).not.toContain(process.pid)
  })

  it('follows one trace id from the HTTP request through every service’s log files', async () => {
    await expectOneTrace(flow, run)
  })
})
