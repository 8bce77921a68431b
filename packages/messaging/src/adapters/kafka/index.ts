/**
 * Kafka, through kafkajs ^2.2 (an optional peer dependency: `npm install kafkajs`).
 *
 * URL: `kafka://[user:password@]host[:port][,host[:port]...][?param=value&...]`, port 9092 when
 * left out (createBroker percent-encodes a host list into the URL's host, read back here with
 * decodeURIComponent); more bootstrap brokers also with `brokers=h2:9092` or the `brokers` option.
 *
 * Query parameters (the `kafka` options given in code win over them):
 *   clientId=NAME                        client id in broker logs and quotas (default "backplane")
 *   brokers=HOST:PORT[,HOST:PORT...]     more bootstrap brokers
 *   ssl=true|false                       TLS with Node's default CA store
 *   sasl=plain|scram-sha-256|scram-sha-512   SASL with the URL's user and password (plain by default)
 *   connectionTimeout, requestTimeout, sessionTimeout, heartbeatInterval, maxWaitTime,
 *   subscribeTimeout, commitInterval=DURATION   as the options of the same names: ms or "30s", "2m"...
 *   (maxWaitTimeInMs, subscribeTimeoutMs, commitIntervalMs: the old names, deprecated)
 *
 * What it guarantees: publish resolves once every in-sync replica has the messages (acks=all).
 * A subscription is one consumer; a partition's messages reach the core one at a time, in
 * order, and an offset is committed only after the core acked its message (in the background,
 * every commitInterval, and at close), so a crash or a shutdown redelivers rather than loses. Kafka keeps order per key (partition), does not count
 * redeliveries (`redeliveries` is always 0) and keeps messages by retention, not by consumption.
 * Messages without a key go to one partition in runs of 100 (see stickyPartitioner). A group is
 * per topic, Kafka group id `<group>/<topic>` (the `groupId` option maps names otherwise). A Kafka
 * group that spans topics (a mapping that returns the same id, or plain kafkajs members) still gets
 * each topic's partitions to the subscriptions of that topic (see subscriptionAwareAssigner;
 * kafkajs's own assigner would leave topics unread).
 *
 * Not used, because the librdkafka mock cluster we test against refuses them: idempotent
 * producers (so a retried send can duplicate a message: consumers dedupe by CloudEvents id) and,
 * except for `ensureTopics`, the admin API.
 */
import { checkKafkajsVersion, installedKafkajsVersion } from './client.js'

// The @internal exports are for the adapter's own tests: stripInternal keeps them out of the
// published types.
/** @internal */
export { checkKafkajsVersion } from './client.js'
/** @internal */
export { fromKafkaHeaders, toKafkaHeaders } from './headers.js'
export type { KafkaTransportOptions } from './options.js'
/** @internal */
export { stickyPartitioner, subscriptionAwareAssigner } from './partitions.js'
/** @internal */
export { ensureTopics } from './topics.js'
export { createKafkaTransport, createTransport } from './transport.js'
/** @internal */
export { optionsFromUrl } from './url.js'

// At import, so that createBroker fails before connecting anything, with the versions in the message.
checkKafkajsVersion(installedKafkajsVersion())
