import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { BridgeErrorCode } from './errors.js'

/** What Node's HTTP parser reports, as the bridge's status, code and message. */
function describe(error: NodeJS.ErrnoException): [number, BridgeErrorCode, string] {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'HEADERS_TOO_LARGE', 'the request headers are larger than the server accepts']
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'REQUEST_TIMEOUT', 'the request was not received in time']
    default:
      return [
        400,
        'MALFORMED_HTTP',
        `the request is not valid HTTP/1.1 (${error.code ?? 'parse error'}: ${error.message}): lines end in CRLF, header values hold no CR, LF or NUL and are not folded`,
      ]
  }
}

/**
 * A `clientError` listener: the answer to a request Node could not parse carries the same JSON
 * error body as the bridge's other refusals. `startBridgeServer` installs it; a server of your
 * own can too: `server.on('clientError', answerClientError)`.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  const [status, code, message] = describe(error)
  const body = JSON.stringify({ error: { code, message, details: [] } })
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  )
}
