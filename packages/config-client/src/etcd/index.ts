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
export { type EtcdSourceOptions, etcd } from './source.js'
