/** Server addresses come from scripts/services.sh through `npm test`; a test without them fails, loudly. */
export function requireEnv(name: 'KAFKA_BROKERS' | 'NATS_URL' | 'ETCD_ENDPOINTS' | 'DATABASE_URL'): string {
  const value = process.env[name]
  if (!value) {
    throw new Error(
      `${name} is not set: run the tests with \`npm test\`, which starts the servers (scripts/services.sh up) and exports their addresses`,
    )
  }
  return value
}
