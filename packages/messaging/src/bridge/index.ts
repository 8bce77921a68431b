export type { BreakerState } from './breaker.js'
export { type Bridge, createBridge } from './bridge.js'
export type { BreakerChangeEvent, BridgeEvents, WebhookDisabledEvent } from './bridge-events.js'
export { answerClientError } from './client-error.js'
export { type BridgeConfig, loadBridgeConfig } from './config.js'
export { BridgeError, type BridgeErrorCode } from './errors.js'
export { type EtcdStoreOptions, etcdStore } from './etcd-store.js'
export type { Filter } from './filter.js'
export type { ApiKey, BridgeOptions, RouteInput, StoreOption, SubscriptionInput } from './options.js'
export type { RouteView } from './routes.js'
export { type BridgeServer, type BridgeServerOptions, startBridgeServer } from './server.js'
export {
  type BridgeState,
  type BridgeStore,
  fileStore,
  memoryStore,
  type StoreChange,
  type StoredRoute,
  type StoredSubscription,
  type StoreKind,
} from './store.js'
export type { BreakerView } from './webhook-breaker-report.js'
export { parseRetryAfter, signWebhookBody, verifyWebhookSignature } from './webhook-client.js'
export type { SubscriptionState, SubscriptionView } from './webhooks.js'
