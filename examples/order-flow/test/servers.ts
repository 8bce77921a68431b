// Servers for the distributed tests. PostgreSQL and etcd are the shared ones of
// scripts/services.sh (each test gets its own database and etcd prefix); the broker is a private
// one (its own state dir and port), so each run starts with empty topics and no consumer groups.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureServers, type Servers, servicesDown, servicesUp } from '../src/infra.js'

export interface PrivateBroker {
  readonly servers: Servers
  stop(): void
}

export function privateBroker(kind: 'nats' | 'kafka', natsPort = 42281): PrivateBroker {
  const shared = ensureServers(['etcd', 'postgres'])
  const dir = mkdtempSync(join(tmpdir(), `order-flow-${kind}-`))
  const env = {
    ...process.env,
    BACKPLANE_SERVICES_DIR: dir,
    BACKPLANE_NATS_PORT: String(natsPort),
    BACKPLANE_NATS_MON_PORT: String(natsPort + 1),
  }
  const vars = servicesUp([kind], env)
  return {
    servers: { ...shared, natsUrl: vars.NATS_URL, kafkaBrokers: vars.KAFKA_BROKERS },
    stop: () => {
      servicesDown([kind], env)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
