/**
 * One process-wide hook for every open destination: on `exit` their buffers are written
 * synchronously; on SIGTERM/SIGINT they are flushed, and when no one else listens for the signal
 * the process then ends as the signal's default action would (so adding a logger never changes
 * how a process dies, and never keeps it alive).
 */
export interface FlushableSink {
  flush(): Promise<void>
  flushSync(): void
}

const sinks = new Set<FlushableSink>()
const SIGNALS = ['SIGTERM', 'SIGINT'] as const
const SIGNAL_FLUSH_TIMEOUT_MS = 5000

function onExit(): void {
  for (const sink of sinks) {
    try {
      sink.flushSync()
    } catch {
      // Nothing can be reported once the process is exiting; carry on with the other sinks.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  const alone = process.listenerCount(signal) === 1
  const flushed = Promise.allSettled([...sinks].map((sink) => sink.flush()))
  if (!alone) return
  const timeout = new Promise((resolve) => setTimeout(resolve, SIGNAL_FLUSH_TIMEOUT_MS).unref())
  void Promise.race([flushed, timeout]).then(() => {
    // Dying of the signal skips the 'exit' event: finish what it would have done.
    onExit()
    uninstall()
    process.kill(process.pid, signal)
  })
}

function install(): void {
  process.on('exit', onExit)
  for (const signal of SIGNALS) process.on(signal, onSignal)
}

function uninstall(): void {
  process.off('exit', onExit)
  for (const signal of SIGNALS) process.off(signal, onSignal)
}

export function registerSink(sink: FlushableSink): void {
  if (sinks.size === 0) install()
  sinks.add(sink)
}

export function unregisterSink(sink: FlushableSink): void {
  if (sinks.delete(sink) && sinks.size === 0) uninstall()
}
