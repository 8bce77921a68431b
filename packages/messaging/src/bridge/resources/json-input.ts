import type { IncomingMessage } from 'node:http'
import type { z } from 'zod'
import { BridgeError, issueLines } from '../errors.js'
import { isJsonType, mediaType, parseJson, readBody } from '../http.js'
import type { ResolvedBridgeOptions } from '../options.js'

function requireJson(request: IncomingMessage): void {
  const type = mediaType(request)
  if (type === undefined || !isJsonType(type)) {
    throw new BridgeError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `expected Content-Type: application/json, got ${type ?? 'none'}`,
    )
  }
}

function validate<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const details = issueLines(result.error.issues)
  throw new BridgeError(400, 'INVALID_REQUEST', `invalid request: ${details.join('; ')}`, { details })
}

/** The JSON body of a create request, checked against its schema (415, 413, 400 otherwise). */
export async function readJsonInput<S extends z.ZodType>(
  request: IncomingMessage,
  schema: S,
  limits: ResolvedBridgeOptions['limits'],
): Promise<z.output<S>> {
  requireJson(request)
  return validate(schema, parseJson(await readBody(request, limits.bodyBytes), limits.jsonDepth))
}
