import { BridgeError } from '../errors.js'
import type { StoreKind } from '../store.js'
import { subscribeFailure } from './subscribe-failure.js'

/** What the API creates and deletes (webhook subscriptions, routes): running here, kept in the store. */
export interface Managed {
  has(id: string): boolean
  origin(id: string): 'config' | 'api' | undefined
  stop(id: string): Promise<unknown>
}

/** `409 ALREADY_EXISTS` when the id is taken: an id names one thing until it is deleted. */
export function refuseTaken(kind: StoreKind, id: string, managed: Managed): void {
  if (managed.has(id))
    throw new BridgeError(409, 'ALREADY_EXISTS', `${kind} ${id} exists: delete it first, or use another id`)
}

/**
 * Started first, so a broker that refuses costs no store write; stored next, and stopped again
 * if the store fails, so nothing runs that a restart would forget.
 */
export async function startThenStore(
  id: string,
  managed: Managed,
  steps: { start(): Promise<unknown>; put(): Promise<void> },
): Promise<void> {
  try {
    await steps.start()
  } catch (error) {
    throw subscribeFailure(error)
  }
  try {
    await steps.put()
  } catch (error) {
    await managed.stop(id)
    throw BridgeError.is(error) ? error : new BridgeError(503, 'STORE_FAILED', String(error))
  }
}

/** Stops and forgets what the API added; what the config file declares is changed there, not here. */
export async function removeUnlessDeclared(
  kind: StoreKind,
  id: string,
  managed: Managed,
  forget: () => Promise<void>,
): Promise<void> {
  if (managed.origin(id) === 'config') {
    throw new BridgeError(409, 'DECLARED_IN_CONFIG', `${kind} ${id} is declared in the config file: remove it there`)
  }
  await managed.stop(id)
  await forget()
}
