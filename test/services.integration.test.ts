/**
 * scripts/services.sh, as `npm test` runs it: every server is up on 127.0.0.1 and its address is
 * in the environment (the default ports, or those set by BACKPLANE_*_PORT). Later packages'
 * integration tests build on exactly this.
 */
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'

function firstBytes(address: string, send?: Buffer): Promise<Buffer> {
  const url = new URL(address.includes('://') ? address : `tcp://${address}`)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      if (send) socket.write(send)
    })
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer from ${address}`)))
    socket.once('data', (data) => {
      socket.destroy()
      resolve(data)
    })
    socket.once('error', reject)
  })
}

describe('servers started by scripts/services.sh', () => {
  it('etcd answers its health check', async () => {
    const endpoint = process.env.ETCD_ENDPOINTS?.split(',')[0]
    expect(endpoint).toBe(`http://127.0.0.1:${process.env.BACKPLANE_ETCD_PORT ?? 23790}`)
    const health = (await (await fetch(`${endpoint}/health`)).json()) as { health: string }
    expect(health.health).toBe('true')
  })

  it('NATS greets with INFO and has JetStream on', async () => {
    expect(process.env.NATS_URL).toBe(`nats://127.0.0.1:${process.env.BACKPLANE_NATS_PORT ?? 42220}`)
    const info = (await firstBytes(process.env.NATS_URL ?? '')).toString()
    expect(info).toMatch(/^INFO /)
    expect(JSON.parse(info.slice(5))).toMatchObject({ jetstream: true })
  })

  it('the Kafka mock cluster answers an ApiVersions request', async () => {
    expect(process.env.KAFKA_BROKERS).toMatch(/^127\.0\.0\.1:\d+$/)
    // ApiVersions v0: size, api key 18, version 0, correlation id 1, empty client id.
    const request = Buffer.from([0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
    const response = await firstBytes(process.env.KAFKA_BROKERS ?? '', request)
    expect(response.readInt32BE(4)).toBe(1) // our correlation id
    expect(response.readInt16BE(8)).toBe(0) // error code: none
  })

  it('PostgreSQL accepts connections for the backplane database', async () => {
    const url = new URL(process.env.DATABASE_URL ?? '')
    expect(url.port).toBe(process.env.BACKPLANE_PG_PORT ?? '54329')
    expect(url.pathname).toBe('/backplane')
    // SSLRequest: the server answers one byte, 'N' (no TLS), before any authentication.
    const answer = await firstBytes(process.env.DATABASE_URL ?? '', Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]))
    expect(answer.toString()).toBe('N')
  })

  it('Prometheus is ready and reads the targets directory apps write to', async () => {
    expect(process.env.PROMETHEUS_URL).toBe(`http://127.0.0.1:${process.env.BACKPLANE_PROMETHEUS_PORT ?? 49090}`)
    const ready = await fetch(`${process.env.PROMETHEUS_URL}/-/ready`)
    expect(ready.status).toBe(200)
    const config = (await (await fetch(`${process.env.PROMETHEUS_URL}/api/v1/status/config`)).json()) as {
      data: { yaml: string }
    }
    expect(config.data.yaml).toContain(`${process.env.PROMETHEUS_TARGETS_DIR}/*.json`)
  })
})
