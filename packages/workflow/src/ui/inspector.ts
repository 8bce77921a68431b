/**
 * `createInspector`: a read-only web page over a workflow store, as one Node request listener
 * `(req, res, next?)`. It mounts on node:http, Express (`app.use('/workflows', inspector)`) and
 * Fastify (through `reply.raw`), answers GET only, and serves:
 *
 *   /                        the page (ui/index.html, then assets/app.js and assets/app.css)
 *   /api/counts              instances per machine, version, state and status; the machines given
 *   /api/instances           a page of instances (filters, `limit`, `after`), without their context
 *   /api/instances/:id       one instance, whole, and its history
 *   /api/diagram             a machine version's diagram, laid out
 *   /api/stream              the same, live, as Server-Sent Events
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { durationSchema, parseWith } from '@backplane/internal'
import { z } from 'zod'
import { WorkflowError } from '../errors.js'
import { type AnyMachine, isMachine } from '../machine.js'
import { createReader, type Reader } from '../reader.js'
import type { Store } from '../store.js'
import { assetsDir, isAsset, sendAsset } from './assets.js'
import { ApiError, originalUrl, sendError, sendJson, splitUrl } from './http.js'
import { createLive, type TransitionSource } from './live.js'
import { decodeSegment, parseQuery } from './query.js'
import { diagramView, instanceView, listView, overview } from './views.js'

export interface InspectorOptions {
  /** The store to read: the inspector opens its own reader on it and `close()` closes the store. Give it a handle of its own. */
  store?: Store | undefined
  /** Or a reader you open and close yourself (`createReader`). */
  reader?: Reader | undefined
  /** Machine definitions, to draw their diagrams; without them diagrams show the transitions seen in histories. */
  machines?: readonly AnyMachine[] | undefined
  /** The path it is mounted at on a node:http server or under Fastify (`/workflows`). Not needed under Express's `app.use(path, …)`. */
  basePath?: string | undefined
  /** An engine in this process: live updates follow its transitions instead of polling. */
  engine?: TransitionSource | undefined
  /** How often live streams poll the store. Default "1s". */
  pollInterval?: number | string | undefined
  /** Live streams open at once; more get 503. Default 50. */
  maxStreams?: number | undefined
}

/** A Node request listener serving the inspector; call `close()` to end its live streams (and its own reader). */
export interface Inspector {
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void
  close(): Promise<void>
}

const optionsSchema = z
  .strictObject({
    store: z.custom<Store>((v) => typeof v === 'object' && v !== null, 'expected a store').optional(),
    reader: z
      .custom<Reader>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Reader).counts === 'function',
        'expected a reader from createReader(...)',
      )
      .optional(),
    machines: z.array(z.custom<AnyMachine>(isMachine, 'expected a machine from defineMachine(...)')).optional(),
    basePath: z
      .string()
      .regex(/^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/, 'expected a path such as /workflows (no trailing slash)')
      .default(''),
    engine: z
      .custom<TransitionSource>(
        (v) => typeof (v as TransitionSource | undefined)?.events?.on === 'function',
        'expected an engine (with events)',
      )
      .optional(),
    pollInterval: durationSchema({ min: 10 }).default(1000),
    maxStreams: z.number().int().min(1).default(50),
  })
  .refine((o) => (o.store === undefined) !== (o.reader === undefined), 'expected either store or reader')

const invalid = (message: string, details: string[]) =>
  new WorkflowError('WORKFLOW_INVALID_OPTIONS', message, { details })

/** A reader given to the inspector, seeing the machines given to the inspector first. */
function withMachines(reader: Reader, machines: readonly AnyMachine[]): Reader {
  return {
    open: () => reader.open(),
    close: () => reader.close(),
    list: (filter) => reader.list(filter),
    get: (id) => reader.get(id),
    history: (id) => reader.history(id),
    counts: (filter) => reader.counts(filter),
    machine: (id, version) => machines.find((m) => m.id === id && m.version === version) ?? reader.machine(id, version),
    machines: [
      ...machines,
      ...reader.machines.filter((m) => !machines.some((n) => n.id === m.id && n.version === m.version)),
    ],
  }
}

/** A read-only web page over a store; see the module comment for its routes. */
export function createInspector(options: InspectorOptions): Inspector {
  const opts = parseWith(optionsSchema, options, invalid, 'createInspector')
  // A package installed without its page fails here, at setup, rather than on the first visit.
  assetsDir()
  const ownReader = opts.reader === undefined
  const reader = opts.reader ?? createReader({ store: opts.store as Store, machines: opts.machines })
  const viewReader = opts.reader && opts.machines ? withMachines(opts.reader, opts.machines) : reader
  const live = createLive({
    reader: viewReader,
    interval: opts.pollInterval,
    engine: opts.engine,
    maxStreams: opts.maxStreams,
  })
  const base = opts.basePath

  /** The path under the mount point, or undefined when the request is not for the inspector. */
  const mounted = (req: IncomingMessage, path: string): string | undefined => {
    if (base === '') return path
    if (path === base || path.startsWith(`${base}/`)) return path.slice(base.length)
    // Express strips its mount path from req.url and keeps the whole URL in originalUrl.
    if (originalUrl(req) !== req.url) return path
    return undefined
  }

  const route = async (req: IncomingMessage, res: ServerResponse, path: string, search: string) => {
    if (req.method !== 'GET')
      throw new ApiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed: the inspector is read-only (GET)`)
    if (path === '' || path === '/') {
      // The page's links are relative: it must be served at a URL ending in "/".
      const wholePath = splitUrl(originalUrl(req)).path
      if (!wholePath.endsWith('/')) {
        const last = wholePath.slice(wholePath.lastIndexOf('/') + 1)
        res.writeHead(308, { location: `${last}/${search ? `?${search}` : ''}` })
        res.end()
        return
      }
      sendAsset(res, 'index.html', req.headers['if-none-match'])
      return
    }
    const parts = path.split('/').slice(1)
    if (parts[0] === 'assets' && parts.length === 2 && isAsset(parts[1] as string) && parts[1] !== 'index.html') {
      sendAsset(res, parts[1] as 'app.js', req.headers['if-none-match'])
      return
    }
    if (parts[0] !== 'api') throw new ApiError(404, 'NOT_FOUND', `nothing at ${path}`)
    const [, what, id, sub] = parts
    if (what === 'counts' && parts.length === 2)
      return sendJson(res, 200, await overview(viewReader, parseQuery('counts', search)))
    if (what === 'instances' && parts.length === 2)
      return sendJson(res, 200, await listView(viewReader, parseQuery('list', search)))
    if (what === 'instances' && id !== undefined && (parts.length === 3 || (parts.length === 4 && sub === 'history'))) {
      parseQuery('none', search)
      const view = await instanceView(viewReader, decodeSegment(id))
      return sendJson(res, 200, sub === 'history' ? { history: view.history } : view)
    }
    if (what === 'diagram' && parts.length === 2) {
      const q = parseQuery('diagram', search)
      return sendJson(res, 200, await diagramView(viewReader, q.machine, q.version, q.instance))
    }
    if (what === 'stream' && parts.length === 2) {
      const q = parseQuery('stream', search)
      // An unknown instance is a 404 now rather than an error event forever after.
      if (q.instance !== undefined) await viewReader.get(q.instance)
      live.attach(res, q)
      return
    }
    throw new ApiError(404, 'NOT_FOUND', `nothing at ${path}`)
  }

  const inspector = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => {
    const { path, search } = splitUrl(req.url ?? '/')
    const relative = mounted(req, path)
    if (relative === undefined) {
      if (next) next()
      else sendError(res, new ApiError(404, 'NOT_FOUND', `nothing at ${path}: the inspector is at ${base}/`))
      return
    }
    route(req, res, relative, search).catch((error: unknown) =>
      sendError(res, error, error instanceof ApiError && error.status === 405 ? { allow: 'GET' } : {}),
    )
  }
  return Object.assign(inspector, {
    async close() {
      live.close()
      if (ownReader) await reader.close()
    },
  })
}
