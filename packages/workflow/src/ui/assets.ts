/**
 * The page's static files, shipped in the package's `ui/` folder: found next to the built files
 * (dist/ → ../ui) or the sources (src/ui/ → ../../ui), read once, served from memory. Only the
 * names listed here are ever served: a request names an asset, never a path.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import { WorkflowError } from '../errors.js'
import { SECURITY_HEADERS } from './http.js'

const TYPES = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'model.js': 'text/javascript; charset=utf-8',
  'views.js': 'text/javascript; charset=utf-8',
  'diagram.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
} as const

export type AssetName = keyof typeof TYPES

export const isAsset = (name: string): name is AssetName => Object.hasOwn(TYPES, name)

interface Asset {
  readonly body: Buffer
  readonly etag: string
}

let cache: Map<AssetName, Asset> | undefined

/**
 * The package's `ui/` folder, searched for from this module: one level up from dist/ (where the
 * build puts this code), two from src/ui/ (the sources the tests run).
 */
export function assetsDir(from: string = import.meta.url): string {
  for (const relative of ['../ui/', '../../ui/']) {
    const dir = new URL(relative, from)
    if (existsSync(new URL('index.html', dir))) return fileURLToPath(dir)
  }
  throw new WorkflowError(
    'WORKFLOW_INVALID_OPTIONS',
    `the inspector's page (ui/index.html) is missing next to ${fileURLToPath(from)}: the package is incomplete, reinstall it`,
  )
}

function load(): Map<AssetName, Asset> {
  if (cache) return cache
  const dir = assetsDir()
  const assets = new Map<AssetName, Asset>()
  for (const name of Object.keys(TYPES) as AssetName[]) {
    const body = readFileSync(`${dir}${name}`)
    assets.set(name, { body, etag: `"${createHash('sha1').update(body).digest('base64url')}"` })
  }
  cache = assets
  return assets
}

export function sendAsset(res: ServerResponse, name: AssetName, ifNoneMatch: string | undefined): void {
  const asset = load().get(name) as Asset
  const headers = { ...SECURITY_HEADERS, etag: asset.etag, 'cache-control': 'no-cache' }
  if (ifNoneMatch === asset.etag) {
    res.writeHead(304, headers)
    res.end()
    return
  }
  res.writeHead(200, { ...headers, 'content-type': TYPES[name], 'content-length': String(asset.body.length) })
  res.end(asset.body)
}
