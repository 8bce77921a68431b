// Servers for the distributed tests. PostgreSQL and etcd are the shared ones of
// scripts/services.sh (each test gets its own database and etcd prefix); the broker is a private
// one (its own state dir and port), so each run starts with empty topics and no consumer groups.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureServers, type Servers } from '../src/infra.js'
import { EXAMPLE_ROOT } from '../src/lib/paths.js'

const script = join(EXAMPLE_ROOT, '..', '..', 'scripts', 'services.sh')

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
  execFileSync('bash', [script, 'up', kind], { env, stdio: ['ignore', 'ignore', 'inherit'] })
  const vars = Object.fromEntries(
    execFileSync('bash', [script, 'env'], { env, encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )
  return {
    servers: { ...shared, natsUrl: vars.NATS_URL, kafkaBrokers: vars.KAFKA_BROKERS },
    stop: () => {
      execFileSync('bash', [script, 'down', kind], { env, stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
