// CPU time of the PostgreSQL server, read from /proc: used by run.mjs (to find the server) and by
// worker.mjs (to read it at the edges of a measured window, so set-up and checks are left out).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const CLOCK_TICK_MS = 10 // USER_HZ is 100 on Linux

/** The PostgreSQL server's process id, read from its data directory (undefined if that is not readable here). */
export async function postmasterPid(url) {
  try {
    const pg = (await import('pg')).default
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    const dir = (await client.query('SHOW data_directory')).rows[0].data_directory
    await client.end()
    return Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0])
  } catch {
    return undefined
  }
}

/**
 * CPU time (ms, utime + stime) used so far by the PostgreSQL server: the postmaster, its live
 * children (backends, WAL writer, checkpointer, autovacuum) and the children it has reaped (a
 * finished run's backends). Undefined without /proc or without a pid.
 */
export function serverCpuMs(pid) {
  if (pid === undefined) return undefined
  try {
    const fields = (path) => readFileSync(path, 'utf8').split(') ')[1].split(' ')
    const own = fields(`/proc/${pid}/stat`)
    // After "pid (comm) ": [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime.
    let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const f = fields(`/proc/${entry}/stat`)
        if (Number(f[1]) === pid) ticks += Number(f[11]) + Number(f[12])
      } catch {}
    }
    return ticks * CLOCK_TICK_MS
  } catch {
    return undefined
  }
}
