import { parseArgs } from 'node:util'
import type { LoggerLike } from '@backplane/messaging'
// By package name: the bin's bundle then holds only this file, not a second copy of the bridge.
import { BridgeError, startBridgeServer } from '@backplane/messaging/bridge'

export const USAGE = `usage: backplane-bridge --config <file> [--host <address>] [--port <port>] [--insecure]

  -c, --config    bridge config file (YAML); see the README of @backplane/messaging
      --host      address to listen on (default: the config's listen.host, else 127.0.0.1)
      --port      port to listen on (default: the config's listen.port, else 8080)
      --insecure  accept requests without an API key when no keys are configured,
                  even on a non-loopback address
  -h, --help      this text

Environment: BACKPLANE_BRIDGE_HOST, _PORT, _BROKER_<NAME>, _DEFAULT_BROKER, _STORE, _TOPICS,
_WEBHOOKS_ALLOW, _INSECURE override the file; \${NAME} in the file reads a variable.
BACKPLANE_BRIDGE_LOG_LEVEL=debug logs more.
`

export interface CliIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  env: NodeJS.ProcessEnv
  /** Aborted on SIGTERM/SIGINT: the server stops gracefully and main resolves 0. */
  signal: AbortSignal
}

function jsonLogger(stream: NodeJS.WritableStream, debug: boolean): LoggerLike {
  const line = (level: string, obj: object | string, msg?: string) => {
    // pino's shapes: (fields, message) or (message).
    const fields = typeof obj === 'string' ? { msg: obj } : { ...obj, msg }
    stream.write(`${JSON.stringify({ level, time: new Date().toISOString(), ...fields })}\n`)
  }
  return {
    debug: (obj, msg) => {
      if (debug) line('debug', obj, msg)
    },
    info: (obj, msg) => line('info', obj, msg),
    warn: (obj, msg) => line('warn', obj, msg),
    error: (obj, msg) => line('error', obj, msg),
  }
}

/** The `backplane-bridge` command: resolves with the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  let values: { config?: string; host?: string; port?: string; insecure?: boolean; help?: boolean }
  try {
    values = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        host: { type: 'string' },
        port: { type: 'string' },
        insecure: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (error) {
    io.stderr.write(`backplane-bridge: ${(error as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help) {
    io.stdout.write(USAGE)
    return 0
  }
  if (!values.config) {
    io.stderr.write(`backplane-bridge: --config is required\n\n${USAGE}`)
    return 2
  }
  const port = values.port === undefined ? undefined : Number(values.port)
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65_535)) {
    io.stderr.write(`backplane-bridge: --port: expected a port number, got ${JSON.stringify(values.port)}\n`)
    return 2
  }
  const logger = jsonLogger(io.stderr, io.env.BACKPLANE_BRIDGE_LOG_LEVEL === 'debug')
  let server: Awaited<ReturnType<typeof startBridgeServer>>
  try {
    server = await startBridgeServer({
      config: values.config,
      host: values.host,
      port,
      insecure: values.insecure,
      logger,
      env: io.env,
    })
  } catch (error) {
    io.stderr.write(`backplane-bridge: ${BridgeError.is(error) ? error.message : ((error as Error)?.stack ?? error)}\n`)
    return BridgeError.is(error) && (error.code === 'BRIDGE_INSECURE' || error.code === 'BRIDGE_INVALID_CONFIG') ? 2 : 1
  }
  logger.info({ url: server.url, port: server.port }, 'ready')
  if (!io.signal.aborted) await new Promise((resolve) => io.signal.addEventListener('abort', resolve, { once: true }))
  logger.info({}, 'stopping')
  const force = setTimeout(() => {
    logger.error({}, 'did not stop within 30 s')
    process.exit(1)
  }, 30_000)
  force.unref()
  await server.close()
  clearTimeout(force)
  logger.info({}, 'stopped')
  return 0
}
