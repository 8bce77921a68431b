// One latency block in a fresh process: `node latency-worker.mjs <raw|client> <updates> <endpoints> <prefix>`.
// A writer publishes bench/value = i as a release (releases().publish: the value, the release
// record and the head in one compare-and-swap transaction), one at a time, and waits for the
// watching side's listener to see i before the next; latency = listener time - time just before
// the publish. `publishMs`: how long each publish call took. The watching side is
// either a raw etcd3 prefix watch (the anchor) or @backplane/config-client with default options
// (config.watch('bench.value')). Prints one JSON line: samples (ms), mismatches, warm-up check.
import { performance } from 'node:perf_hooks'
import { createConfig } from '@backplane/config-client'
import { etcd, releases } from '@backplane/config-client/etcd'
import { Etcd3 } from 'etcd3'
import { z } from 'zod'

const [side, updatesArg, endpoints, prefix] = process.argv.slice(2)
const UPDATES = Number(updatesArg)
const WARMUP = 50
const hosts = endpoints.split(',')
const Schema = z.object({ bench: z.object({ value: z.number().int() }) })
const writer = await releases({ endpoints: hosts, prefix, schema: Schema, author: 'bench' })
await writer.publish({ set: { 'bench.value': -1 } })

let expect = -1
let resolveSeen
let seenAt = 0
let mismatches = 0
const onValue = (value) => {
  const now = performance.now()
  if (value !== expect) {
    mismatches++
    return
  }
  seenAt = now
  resolveSeen?.()
}

let close
if (side === 'raw') {
  const client = new Etcd3({ hosts })
  const watcher = await client.watch().prefix(prefix).create()
  watcher.on('put', (kv) => onValue(Number(kv.value.toString())))
  close = async () => {
    await watcher.cancel()
    client.close()
  }
} else {
  const config = await createConfig({ schema: Schema, sources: [etcd({ endpoints: hosts, prefix })] })
  if (config.get('bench.value') !== -1)
    throw new Error(`config-client loaded ${config.get('bench.value')}, expected -1`)
  config.watch('bench.value', (next) => onValue(next))
  close = () => config.close()
}

async function one(i) {
  expect = i
  const seen = new Promise((resolve) => {
    resolveSeen = resolve
  })
  const t0 = performance.now()
  await writer.publish({ set: { 'bench.value': i } })
  publishMs.push(performance.now() - t0)
  await seen
  return seenAt - t0
}
const publishMs = []

// Warm-up, also the output check: every value must reach the listener, in order, exactly.
for (let i = 0; i < WARMUP; i++) await one(i)
const warmupMismatches = mismatches
const samples = []
for (let i = 0; i < UPDATES; i++) samples.push(await one(WARMUP + i))
await close()
await writer.close()
process.stdout.write(
  `${JSON.stringify({ side, samples, publishMs: publishMs.slice(WARMUP), mismatches, warmupMismatches })}\n`,
)
