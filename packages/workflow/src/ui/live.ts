/**
 * Live updates as Server-Sent Events. One refresh loop serves every open stream: it runs only
 * while a stream is open, reads the counts once per round, and pushes each stream what changed in
 * its own view (the counts, its page of the list, the instance it shows). Without an engine it
 * polls the reader every `interval`; with one it refreshes on the engine's transitions (and every
 * ten intervals, for commits of other processes).
 */
import type { ServerResponse } from 'node:http'
import type { Reader } from '../reader.js'
import type { Engine } from '../types.js'
import { ApiError, errorBody, SECURITY_HEADERS } from './http.js'
import type { Query } from './query.js'
import { instanceView, listView, overview } from './views.js'

/** The part of an engine the stream listens to: its `events` emitter. */
export type TransitionSource = Pick<Engine, 'events'>

export interface LiveOptions {
  readonly reader: Reader
  readonly interval: number
  readonly engine?: TransitionSource | undefined
  readonly maxStreams: number
}

interface Stream {
  readonly res: ServerResponse
  readonly query: Query
  readonly last: Map<string, string>
  lastWrite: number
}

const HEARTBEAT = 15_000
const SETTLE = 100

export interface Live {
  /** Answers a stream request: headers now, events as the view changes, until the client goes. */
  attach(res: ServerResponse, query: Query): void
  /** Open streams. */
  readonly size: number
  /** Ends every stream and stops the loop. */
  close(): void
}

export function createLive({ reader, interval, engine, maxStreams }: LiveOptions): Live {
  const streams = new Set<Stream>()
  let timer: NodeJS.Timeout | undefined
  let soon: NodeJS.Timeout | undefined
  let running = false
  let again = false
  let closed = false

  const write = (stream: Stream, event: string, data: unknown) => {
    const text = JSON.stringify(data)
    if (stream.last.get(event) === text) return
    // A client that does not read keeps its last state: it gets what changed once it drains.
    if (stream.res.writableNeedDrain) return
    stream.last.set(event, text)
    stream.res.write(`event: ${event}\ndata: ${text}\n\n`)
    stream.lastWrite = Date.now()
  }

  const refreshStream = async (stream: Stream, counts: unknown) => {
    write(stream, 'counts', counts)
    const { instance, ...filter } = stream.query
    try {
      if (instance !== undefined) write(stream, 'instance', await instanceView(reader, instance))
      else write(stream, 'list', await listView(reader, filter))
      stream.last.delete('problem')
    } catch (error) {
      write(stream, 'problem', { error: errorBody(error).error })
    }
    if (Date.now() - stream.lastWrite >= HEARTBEAT && !stream.res.writableNeedDrain) {
      stream.res.write(': ping\n\n')
      stream.lastWrite = Date.now()
    }
  }

  const refresh = async () => {
    if (running) {
      again = true
      return
    }
    running = true
    try {
      do {
        again = false
        let counts: unknown
        try {
          counts = await overview(reader)
        } catch (error) {
          for (const stream of streams) write(stream, 'problem', { error: errorBody(error).error })
          continue
        }
        await Promise.all([...streams].map((stream) => refreshStream(stream, counts)))
      } while (again && streams.size > 0)
    } finally {
      running = false
    }
  }

  const kick = () => {
    if (soon || closed) return
    soon = setTimeout(() => {
      soon = undefined
      void refresh()
    }, SETTLE)
    soon.unref?.()
  }

  const start = () => {
    if (timer) return
    timer = setInterval(() => void refresh(), engine ? interval * 10 : interval)
    timer.unref?.()
    engine?.events.on('transition', kick)
  }

  const stop = () => {
    clearInterval(timer)
    clearTimeout(soon)
    timer = undefined
    soon = undefined
    engine?.events.off('transition', kick)
  }

  const detach = (stream: Stream) => {
    if (!streams.delete(stream)) return
    if (streams.size === 0) stop()
  }

  return {
    get size() {
      return streams.size
    },
    attach(res, query) {
      if (closed || streams.size >= maxStreams)
        throw new ApiError(503, 'TOO_MANY_STREAMS', `at most ${maxStreams} live streams at once: close one`)
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      res.write('retry: 2000\n\n')
      const stream: Stream = { res, query, last: new Map(), lastWrite: Date.now() }
      streams.add(stream)
      // The response's close, not the request's: that one fires once a bodiless request is read.
      const gone = () => detach(stream)
      res.once('close', gone)
      res.once('error', gone)
      start()
      kick()
    },
    close() {
      closed = true
      stop()
      for (const stream of streams) stream.res.end()
      streams.clear()
    },
  }
}
