import type { IncomingMessage, ServerResponse } from 'node:http'
import { BridgeError } from './errors.js'
import { checkJsonDepth } from './json-limits.js'

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' }

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): void {
  if (response.headersSent) {
    response.end()
    return
  }
  const text = JSON.stringify(body)
  response.writeHead(status, headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS)
  response.end(text)
}

export function sendError(response: ServerResponse, error: BridgeError, headers?: Record<string, string>): void {
  sendJson(response, error.status, error.toJSON(), headers)
}

/** The media type without parameters, lowercase: `application/json; charset=utf-8` → `application/json`. */
export function mediaType(request: IncomingMessage): string | undefined {
  const header = request.headers['content-type']
  if (header === undefined) return undefined
  const semicolon = header.indexOf(';')
  return (semicolon === -1 ? header : header.slice(0, semicolon)).trim().toLowerCase()
}

export function isJsonType(type: string): boolean {
  return type === 'application/json' || type.endsWith('+json')
}

/** Parses JSON text, or answers 400 INVALID_JSON saying where it broke (JSON_TOO_DEEP past `maxDepth`). */
export function parseJson(body: Buffer, maxDepth: number): unknown {
  checkJsonDepth(body, maxDepth)
  try {
    return JSON.parse(body.toString('utf8'))
  } catch (error) {
    throw new BridgeError(400, 'INVALID_JSON', `the body is not valid JSON: ${(error as Error).message}`)
  }
}

interface BodyCarrier extends IncomingMessage {
  /** Set by Express/connect body parsers that already read the stream. */
  body?: unknown
  rawBody?: unknown
}

/**
 * Reads the request body, at most `limit` bytes: 413 PAYLOAD_TOO_LARGE as soon as the
 * Content-Length or the bytes received pass it (the rest is not read; the connection is closed
 * after the answer). A body some framework middleware already read is taken from `req.rawBody`
 * or `req.body` (a Buffer or string as is; a parsed object as JSON again).
 */
export function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const carrier = request as BodyCarrier
  if (request.readableEnded || carrier.rawBody !== undefined) {
    const given = carrier.rawBody ?? carrier.body
    const bytes =
      given === undefined
        ? Buffer.alloc(0)
        : Buffer.isBuffer(given)
          ? given
          : typeof given === 'string'
            ? Buffer.from(given)
            : Buffer.from(JSON.stringify(given))
    if (bytes.length > limit) return Promise.reject(tooLarge(limit))
    return Promise.resolve(bytes)
  }
  const declared = request.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        request.pause()
        reject(tooLarge(limit))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size))
    }
    const onError = (error: Error) => {
      cleanup()
      reject(new BridgeError(400, 'INVALID_REQUEST', `the request body could not be read: ${error.message}`))
    }
    const onAborted = () => {
      cleanup()
      reject(new BridgeError(400, 'INVALID_REQUEST', 'the client went away before sending the whole body'))
    }
    const cleanup = () => {
      request.off('data', onData)
      request.off('end', onEnd)
      request.off('error', onError)
      request.off('aborted', onAborted)
    }
    request.on('data', onData)
    request.on('end', onEnd)
    request.on('error', onError)
    request.on('aborted', onAborted)
  })
}

function tooLarge(limit: number): BridgeError {
  return new BridgeError(
    413,
    'PAYLOAD_TOO_LARGE',
    `the body is larger than the limit of ${limit} bytes (limits.bodyBytes)`,
  )
}
