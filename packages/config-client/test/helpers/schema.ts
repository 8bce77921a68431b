import type { Etcd3 } from 'etcd3'
import { z } from 'zod'
import { buildTree } from '../../src/etcd/keys.js'
import { secret } from '../../src/index.js'
import { fillObjects } from '../../src/schema.js'

/** The schema most tests use: defaults, an enum, a secret, a record. */
export const AppConfig = z.object({
  service: z.string().default('orders'),
  payment: z.object({
    timeoutMs: z.number().int().positive().default(5000),
    provider: z.enum(['stripe', 'adyen']).default('stripe'),
    retries: z.number().int().min(0).max(10).default(3),
    apiKey: secret(z.string().min(4)).optional(),
  }),
  features: z.record(z.string(), z.union([z.boolean(), z.number()])).default({}),
})
export type AppConfig = z.output<typeof AppConfig>

/** What etcd holds under `prefix` right now, as the config source would build it. */
export async function etcdTree(client: Etcd3, prefix: string, schema: z.ZodType = AppConfig) {
  const kvs = new Map(Object.entries(await client.getAll().prefix(prefix).strings()))
  return buildTree(kvs, prefix, schema)
}

/** The configuration the schema makes of etcd's tree: what a config reading only etcd must serve. */
export async function expectedFromEtcd(client: Etcd3, prefix: string) {
  return AppConfig.parse(fillObjects(AppConfig, await etcdTree(client, prefix)))
}
