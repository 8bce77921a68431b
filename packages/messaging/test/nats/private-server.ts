import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url))
const run = promisify(execFile)

export interface PrivateNats {
  url: string
  /** `kill` is kill -9; `up` starts it again on the same port and JetStream store. */
  services(command: 'kill' | 'up' | 'down'): Promise<void>
  /** Stops the server and removes its directory. */
  remove(): Promise<void>
}

/**
 * A NATS server of a test file's own (same script, own directory and ports), for files that kill
 * and restart it: the shared one from `npm test` stays up for the files running in parallel.
 */
export function privateNats(port: number): PrivateNats {
  const env = {
    ...process.env,
    BACKPLANE_SERVICES_DIR: mkdtempSync(join(tmpdir(), `backplane-nats-${port}-`)),
    BACKPLANE_NATS_PORT: String(port),
    BACKPLANE_NATS_MON_PORT: String(port + 6000),
  }
  const services = async (command: 'kill' | 'up' | 'down') => {
    await run('bash', ['scripts/services.sh', command, 'nats'], { cwd: repoRoot, env })
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    services,
    async remove() {
      await services('down')
      rmSync(env.BACKPLANE_SERVICES_DIR, { recursive: true, force: true })
    },
  }
}
