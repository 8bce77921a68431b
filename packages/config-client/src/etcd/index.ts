export { loadEtcd3 } from './client.js'
export {
  type DiscoverOptions,
  type Discovery,
  type DiscoveryEvents,
  discover,
  type RegisterOptions,
  type Registration,
  type RegistrationEvents,
  register,
  type ServiceInstance,
} from './registry.js'
export {
  type PublishOptions,
  type PublishResult,
  type Release,
  type ReleaseChange,
  type ReleaseChanges,
  type ReleaseSummary,
  type Releases,
  type ReleasesOptions,
  releases,
} from './releases.js'
export { needsSealing, type ResealOptions, type ResealResult, resealPrefix } from './reseal.js'
export { type EtcdSourceOptions, etcd } from './source.js'
