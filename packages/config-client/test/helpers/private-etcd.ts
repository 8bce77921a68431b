/**
 * A private etcd for fault tests (kill, restart, compaction), started with the project's script on
 * its own ports and state directory so that the shared etcd other tests use is never disturbed.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const script = fileURLToPath(new URL('../../../../scripts/services.sh', import.meta.url))

export interface PrivateEtcd {
  readonly endpoint: string
  /** SIGKILL; data and port kept. */
  kill(): Promise<void>
  /** Start (again, on the same data). */
  up(): Promise<void>
  /** Stop and wipe; removes the state directory. */
  down(): Promise<void>
}

export async function startPrivateEtcd(port: number): Promise<PrivateEtcd> {
  const dir = mkdtempSync(join(tmpdir(), `config-client-etcd-${port}-`))
  const env = {
    ...process.env,
    BACKPLANE_SERVICES_DIR: dir,
    BACKPLANE_ETCD_PORT: String(port),
    BACKPLANE_ETCD_PEER_PORT: String(port + 10),
  }
  const services = async (...args: string[]) => {
    try {
      await run('bash', [script, ...args], { env, timeout: 60_000 })
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string }
      throw new Error(`services.sh ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`)
    }
  }
  await services('up', 'etcd')
  return {
    endpoint: `http://127.0.0.1:${port}`,
    kill: () => services('kill', 'etcd'),
    up: () => services('up', 'etcd'),
    async down() {
      await services('down', 'etcd')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
