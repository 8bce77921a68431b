/**
 * `@backplane/workflow/ui`: the inspector, a read-only web page over a workflow store, as a Node
 * request listener for node:http, Express or Fastify.
 */

export type { InspectorErrorCode } from './http.js'
export { createInspector, type Inspector, type InspectorOptions } from './inspector.js'
export type { TransitionSource } from './live.js'
