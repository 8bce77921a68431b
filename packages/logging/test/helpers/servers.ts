import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Fastify from 'fastify'
import type { Logger as PinoLogger } from 'pino'
import { fastifyLogging } from '../../src/http/fastify.js'
import { httpLogging, withHttpLogging } from '../../src/http/node.js'

/** The same small app on each server: GET /orders/:id logs inside the request, /fail answers 500. */
export interface RunningServer {
  name: string
  url: string
  close(): Promise<void>
}

const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(urlOf(server))))
}

const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()))

export async function nodeServer(log: PinoLogger): Promise<RunningServer> {
  const server = createServer(
    withHttpLogging(
      log,
      async (req, res) => {
        if (req.url === '/fail') {
          res.statusCode = 500
          res.end('boom')
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 2))
        log.info({ handler: 'node' }, 'loading order')
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ id: req.url?.split('/')[2] }))
      },
      { route: (req) => (req.url?.startsWith('/orders/') ? '/orders/:id' : undefined) },
    ),
  )
  const url = await listen(server)
  return { name: 'node:http', url, close: () => closeServer(server) }
}

export async function expressServer(log: PinoLogger): Promise<RunningServer> {
  const app = express()
  app.use(httpLogging(log))
  app.get('/orders/:id', async (req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 2))
    log.info({ handler: 'express' }, 'loading order')
    res.json({ id: req.params.id })
  })
  app.get('/fail', (_req, res) => {
    res.status(500).send('boom')
  })
  const server = createServer(app)
  const url = await listen(server)
  return { name: 'express', url, close: () => closeServer(server) }
}

export async function fastifyServer(log: PinoLogger): Promise<RunningServer> {
  const app = Fastify()
  await app.register(fastifyLogging(log))
  app.get<{ Params: { id: string } }>('/orders/:id', async (req) => {
    await new Promise((resolve) => setTimeout(resolve, 2))
    log.info({ handler: 'fastify' }, 'loading order')
    return { id: req.params.id }
  })
  app.post<{ Body: { id: string } }>('/orders', async (req, reply) => {
    log.info({ handler: 'fastify', body: req.body }, 'creating order')
    reply.code(201)
    return { id: req.body.id }
  })
  app.get('/fail', async (_req, reply) => reply.code(500).send('boom'))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { name: 'fastify', url, close: () => app.close() }
}

export const servers = [nodeServer, expressServer, fastifyServer]
