/**
 * NATS, through nats.js v3: `@nats-io/transport-node` and `@nats-io/jetstream` ^3.0, optional peer
 * dependencies (`npm install @nats-io/transport-node @nats-io/jetstream`), in two modes:
 *
 * - core NATS (`nats://host:4222`): at most once. The server keeps nothing: a message published
 *   while no one subscribes is gone, `from: 'earliest'` is refused, groups are queue groups and a
 *   release cannot redeliver.
 * - JetStream (`nats://host:4222?jetstream=true`): durable and at least once. Each topic is stored
 *   in a stream created on demand, `BP_<topic>` with the topic as its only subject (characters
 *   JetStream refuses in names, like `.`, become `_` and a hash of the topic is appended), unless
 *   a stream already holds the subject or `stream=` names one. A group is a durable pull consumer
 *   named after it, whose `from` counts when it is created; a plain subscriber gets an ephemeral
 *   consumer of its own, deleted when it closes.
 *
 * Reconnects are nats.js's (forever, by default). nats.js empties its outbound buffer at every
 * reconnect attempt, so a publish waits up to `timeout` for the connection rather than being
 * buffered, and JetStream ones not yet acknowledged are sent again after a reconnect (see
 * de-duplication below). Subscriptions pull with nats.js's `fetch()` in a loop of our own rather
 * than `consume()`, which resumes after a restart as well but cannot be stopped without leaving
 * what it pulled leased until `ackWait`: a close hands back what was not handed over. Pull
 * consumers resume by themselves, and are re-created if the server lost them.
 * (test/nats/v3-faults.integration.test.ts shows each of these on the plain v3 client.)
 *
 * URL: `nats://[user:password@ | token@]host[:port][,host[:port]...][?param=value&...]`, port
 * 4222 when left out; more servers also with `servers=h2:4222,h3:4222` or the `nats.servers`
 * broker option. Query parameters:
 *
 *   jetstream=true|false       JetStream mode (default false: core NATS)
 *   servers=h2:4222,h3:4222    more servers to connect to
 *   name=billing-api           connection name the server shows
 *   tls=true                   require TLS (certificates: the `nats.tls` option, an object)
 *   maxReconnectAttempts=-1    -1 (default) reconnects forever
 *   reconnectTimeWait=250ms    wait between reconnect attempts to one server
 *   connectTimeout=10s         first connection
 *   timeout=5s                 JetStream API requests, PubAcks and core NATS flushes
 *   stream=ORDERS              an existing stream that holds every topic used (never created here)
 *   streamPrefix=BP_           prefix of the streams created on demand
 *   storage=file|memory        storage of the streams created on demand (default file)
 *   maxAge=7d                  how long created streams keep messages (default: forever)
 *   duplicateWindow=2m         JetStream de-duplication window of created streams (server default 2m)
 *   replicas=1                 replicas of created streams (clustered JetStream)
 *   ackWait=30s                how long a delivery may go without ack or heartbeat before redelivery
 *   inactiveThreshold=5m       how long an ephemeral consumer outlives its subscriber
 *   brokerDedupe=true          use the CloudEvents id as `Nats-Msg-Id` (see below)
 *
 * Durations are milliseconds or strings like 500ms, 1.5s, 30s, 15m, 2h, 1h30m, 1d, 1w. Every parameter is also an
 * option of `createNatsTransport` and of `createBroker(url, { nats: {...} })`, which wins over the URL.
 *
 * De-duplication: each message gets a `Nats-Msg-Id` unique to one publish call, so JetStream
 * de-duplicates only this adapter's own retry. With `brokerDedupe=true` the id is the message's
 * CloudEvents id: JetStream then drops, within `duplicateWindow`, any later message published
 * with the same id (an idempotent publisher), and de-duplicating subscribers never see them.
 *
 * NATS headers cannot carry line breaks and lose surrounding spaces: header values have CR/LF
 * replaced by spaces. The message key travels URI-encoded in the `backplane-key` header.
 */

import { checkNatsClients } from './client.js'

// The @internal exports are for the adapter's own tests: stripInternal keeps them out of the
// published types.
/** @internal */
export { checkNatsClients, checkNatsVersion, installedNatsVersion, packageVersionAbove } from './client.js'
/** @internal */
export { checkSubject, consumerNameFor, safeName, streamNameFor } from './names.js'
export type { NatsTransportOptions } from './options.js'
/** @internal */
export { parseNatsOptions, type ResolvedNatsOptions } from './options.js'
export { createNatsTransport, createTransport } from './transport.js'
/** @internal */
export { natsOptionsFromUrl } from './url.js'

// At import, so that createBroker fails on a client outside ^3.0 before it connects anything.
checkNatsClients()
