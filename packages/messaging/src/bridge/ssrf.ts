import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP } from 'node:net'
import { BridgeError } from './errors.js'

/**
 * Where webhooks may go. Link-local (169.254.0.0/16, fe80::/10: cloud metadata lives there),
 * known metadata addresses, "this host" (0.0.0.0/8, ::), multicast and reserved ranges are
 * always refused. Private and loopback networks are refused unless allowlisted. With an
 * allowlist, only its hosts and networks are called at all.
 *
 * DNS is resolved once per call and the connection goes to an address that passed the check
 * (the `lookup` hook of node:http), so a name that re-resolves somewhere else between the check
 * and the connect (DNS rebinding) cannot redirect the call.
 */
export interface WebhookPolicy {
  /** Static and DNS checks of a URL, for a subscription being created. */
  check(url: string): Promise<URL>
  /** Static checks only (no DNS): for subscriptions declared in the config, checked again at each call. */
  checkStatic(url: string): URL
  /** A `lookup` for http.request that only returns allowed addresses of `hostname`. */
  lookup: typeof dnsLookup
  /** Refuses an IP literal host (node:http does not call `lookup` for those). */
  checkLiteral(hostname: string): void
}

const ALWAYS_DENIED = new BlockList()
ALWAYS_DENIED.addSubnet('169.254.0.0', 16, 'ipv4') // link-local, AWS/GCP/Azure/OCI metadata
ALWAYS_DENIED.addSubnet('fe80::', 10, 'ipv6') // link-local
ALWAYS_DENIED.addAddress('fd00:ec2::254', 'ipv6') // AWS metadata over IPv6
ALWAYS_DENIED.addAddress('100.100.100.200', 'ipv4') // Alibaba Cloud metadata
ALWAYS_DENIED.addSubnet('0.0.0.0', 8, 'ipv4') // "this host": 0.0.0.0 reaches local services on Linux
ALWAYS_DENIED.addAddress('::', 'ipv6')
ALWAYS_DENIED.addSubnet('224.0.0.0', 4, 'ipv4') // multicast
ALWAYS_DENIED.addSubnet('240.0.0.0', 4, 'ipv4') // reserved, broadcast
ALWAYS_DENIED.addSubnet('ff00::', 8, 'ipv6') // multicast

const PRIVATE = new BlockList()
PRIVATE.addSubnet('127.0.0.0', 8, 'ipv4')
PRIVATE.addSubnet('10.0.0.0', 8, 'ipv4')
PRIVATE.addSubnet('172.16.0.0', 12, 'ipv4')
PRIVATE.addSubnet('192.168.0.0', 16, 'ipv4')
PRIVATE.addSubnet('100.64.0.0', 10, 'ipv4') // carrier-grade NAT
PRIVATE.addSubnet('198.18.0.0', 15, 'ipv4') // benchmarking
PRIVATE.addAddress('::1', 'ipv6')
PRIVATE.addSubnet('fc00::', 7, 'ipv6') // unique local

/** `::ffff:a.b.c.d` and `::ffff:a9fe:a9fe` are IPv4 addresses in disguise: check them as such. */
function normalize(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const bare = address.startsWith('[') ? address.slice(1, -1) : address
  const version = isIP(bare)
  if (version === 4) return { address: bare, family: 'ipv4' }
  const lower = bare.toLowerCase()
  const mapped = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:(.+)$/.exec(lower)?.[1]
  if (mapped !== undefined) {
    if (isIP(mapped) === 4) return { address: mapped, family: 'ipv4' }
    const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(mapped)
    if (hex) {
      const high = Number.parseInt(hex[1] as string, 16)
      const low = Number.parseInt(hex[2] as string, 16)
      return { address: `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`, family: 'ipv4' }
    }
  }
  return { address: lower, family: 'ipv6' }
}

function refuse(url: string, why: string): BridgeError {
  return new BridgeError(400, 'WEBHOOK_URL_NOT_ALLOWED', `webhook URL ${url} is not allowed: ${why}`)
}

export function createWebhookPolicy(allow: readonly string[]): WebhookPolicy {
  const allowedNets = new BlockList()
  const hosts = new Set<string>()
  const suffixes: string[] = []
  for (const entry of allow) {
    const slash = entry.indexOf('/')
    if (slash !== -1) {
      const base = entry.slice(0, slash)
      const prefix = Number(entry.slice(slash + 1))
      const version = isIP(base)
      if (version === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (version === 4 ? 32 : 128)) {
        throw new BridgeError(
          500,
          'BRIDGE_INVALID_CONFIG',
          `webhooks.allow: ${JSON.stringify(entry)} is not a network such as 10.0.0.0/8`,
        )
      }
      allowedNets.addSubnet(base, prefix, version === 4 ? 'ipv4' : 'ipv6')
    } else if (isIP(entry) !== 0 || isIP(entry.replace(/^\[|\]$/g, '')) !== 0) {
      const n = normalize(entry)
      allowedNets.addAddress(n.address, n.family)
    } else if (entry.startsWith('*.')) {
      suffixes.push(entry.slice(1).toLowerCase())
    } else if (/^[A-Za-z0-9.-]+$/.test(entry)) {
      hosts.add(entry.toLowerCase().replace(/\.$/, ''))
    } else {
      throw new BridgeError(
        500,
        'BRIDGE_INVALID_CONFIG',
        `webhooks.allow: ${JSON.stringify(entry)} is not a host, an address or a network`,
      )
    }
  }
  const restricted = allow.length > 0

  function hostAllowed(hostname: string): boolean {
    const host = hostname.toLowerCase().replace(/\.$/, '')
    if (hosts.has(host)) return true
    for (const suffix of suffixes) if (host.endsWith(suffix) && host.length > suffix.length) return true
    return false
  }

  /** Why `address` may not be called, or undefined when it may. */
  function denial(address: string, namedHostAllowed: boolean): string | undefined {
    const n = normalize(address)
    if (ALWAYS_DENIED.check(n.address, n.family)) return `${address} is a link-local, metadata or reserved address`
    if (allowedNets.check(n.address, n.family)) return undefined
    if (namedHostAllowed) return undefined
    if (restricted) return `${address} is not in webhooks.allow`
    if (PRIVATE.check(n.address, n.family)) {
      return `${address} is a private or loopback address (add it, or its network, to webhooks.allow)`
    }
    return undefined
  }

  function checkStatic(text: string): URL {
    let url: URL
    try {
      url = new URL(text)
    } catch {
      throw new BridgeError(400, 'INVALID_REQUEST', `url: ${JSON.stringify(text)} is not an absolute URL`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw refuse(text, 'only http: and https: URLs are called')
    const literal = url.hostname.replace(/^\[|\]$/g, '')
    if (isIP(literal) !== 0) {
      const why = denial(literal, false)
      if (why) throw refuse(text, why)
    } else if (restricted && !hostAllowed(url.hostname) && !allow.some((e) => e.includes('/') || isIP(e) !== 0)) {
      // Only names are allowlisted, and this is not one of them: no need to resolve.
      throw refuse(text, `host ${url.hostname} is not in webhooks.allow`)
    }
    return url
  }

  const lookup = ((hostname: string, options: unknown, callback: unknown) => {
    const cb = (typeof options === 'function' ? options : callback) as (
      error: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void
    const opts = (typeof options === 'object' && options !== null ? options : {}) as { all?: boolean; family?: number }
    const named = hostAllowed(hostname)
    dnsLookup(hostname, { all: true, family: opts.family ?? 0 }, (error, addresses) => {
      if (error) return cb(error, '')
      const allowed = addresses.filter((a) => denial(a.address, named) === undefined)
      if (allowed.length === 0) {
        const why = addresses.map((a) => denial(a.address, named)).join('; ')
        const failure = Object.assign(new Error(`refused to connect to ${hostname}: ${why}`), {
          code: 'EWEBHOOKDENIED',
        })
        return cb(failure, '')
      }
      if (opts.all) return cb(null, allowed)
      const first = allowed[0] as LookupAddress
      cb(null, first.address, first.family)
    })
  }) as typeof dnsLookup

  return {
    checkStatic,
    async check(text) {
      const url = checkStatic(text)
      const literal = url.hostname.replace(/^\[|\]$/g, '')
      if (isIP(literal) !== 0) return url
      const named = hostAllowed(url.hostname)
      let addresses: LookupAddress[]
      try {
        addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
          dnsLookup(url.hostname, { all: true }, (e, a) => (e ? reject(e) : resolve(a))),
        )
      } catch (error) {
        throw refuse(text, `cannot resolve ${url.hostname} (${(error as NodeJS.ErrnoException).code ?? error})`)
      }
      // Link-local or metadata among the answers is refused outright; otherwise one allowed
      // address is enough (calls connect only to allowed ones).
      const reasons = addresses.map((a) => denial(a.address, named))
      const severe = addresses.find((a) => {
        const n = normalize(a.address)
        return ALWAYS_DENIED.check(n.address, n.family)
      })
      if (severe) throw refuse(text, `${url.hostname} resolves to ${denial(severe.address, named)}`)
      if (reasons.every((r) => r !== undefined)) throw refuse(text, `${url.hostname} resolves to ${reasons.join('; ')}`)
      return url
    },
    checkLiteral(hostname) {
      const literal = hostname.replace(/^\[|\]$/g, '')
      if (isIP(literal) === 0) return
      const why = denial(literal, false)
      if (why) throw Object.assign(new Error(`refused to connect to ${hostname}: ${why}`), { code: 'EWEBHOOKDENIED' })
    },
    lookup,
  }
}
