#!/usr/bin/env node
// `order-flow <service>`: runs one service of the flow in this process (distributed mode), with
// its infrastructure taken from the environment (see runtimeFromEnv) and its OpenTelemetry SDK
// configured by the standard OTEL_* variables (see telemetryOptionsFromEnv). Prints one JSON line
// `{"ready":"<service>","url":…,"metrics":…}` on stdout once it serves; SIGTERM or SIGINT stops it
// cleanly.
import { parseArgs } from 'node:util'
import { runtimeFromEnv } from './runtime.js'
import { SERVICE_NAMES, SERVICES, type ServiceName } from './services/index.js'
import { startTelemetry, telemetryOptionsFromEnv } from './telemetry.js'

const usage = `usage: order-flow <${SERVICE_NAMES.join('|')}>`

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' } },
  })
  const name = positionals[0]
  if (values.help) {
    console.log(usage)
    return 0
  }
  if (!name || !(SERVICE_NAMES as string[]).includes(name) || positionals.length > 1) {
    console.error(usage)
    return 2
  }
  // First: the SDK's context manager and W3C propagator carry the trace ids the logs correlate on.
  const telemetry = await startTelemetry(telemetryOptionsFromEnv(process.env, name))
  const runtime = runtimeFromEnv()
  const service = await SERVICES[name as ServiceName](runtime, {
    webhookSecret: process.env.ORDER_FLOW_WEBHOOK_SECRET ?? 'order-flow-demo-secret',
  })
  console.log(
    JSON.stringify({ ready: name, url: service.url ?? null, metrics: telemetry.metricsUrl, pid: process.pid }),
  )
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
  })
  await service.close()
  await telemetry.shutdown()
  return 0
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`order-flow: ${(error as Error)?.message ?? error}`)
    process.exit(1)
  },
)
