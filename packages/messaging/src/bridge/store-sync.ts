import type { BridgeContext } from './context.js'
import type { StartMode } from './starter.js'
import type { StoreChange, StoredRoute, StoredSubscription } from './store.js'

export type StoreSyncContext = Pick<
  BridgeContext,
  'store' | 'declared' | 'start' | 'webhooks' | 'routes' | 'logger' | 'lifecycle'
>

/**
 * Start-up, once the brokers are connected: loads the store, brings the config's copies in it up
 * to date, and starts every subscription and route (config first, then those added at run time).
 */
export async function syncWithStore(ctx: StoreSyncContext): Promise<void> {
  const { store, declared, start, logger } = ctx
  store.watch?.((change) => applyStoreChange(ctx, change))
  const state = await store.load()
  const starts: Promise<void>[] = []
  // Declared items keep a copy in the store for their creation time: a restart then resumes
  // them like the others (see WebhookManager.startInBackground).
  const now = new Date().toISOString()
  const keepDeclared = async <T extends StoredSubscription | StoredRoute>(
    kind: 'subscription' | 'route',
    items: T[],
    stored: T[],
    startItem: (item: T, mode: StartMode) => Promise<void>,
  ) => {
    for (const item of items) {
      const previous = stored.find((s) => s.id === item.id)
      if (previous !== undefined && previous.origin !== 'config') {
        logger.warn({ kind, id: item.id }, 'an item added at run time has the id of one in the config: the config wins')
      }
      const again = previous?.origin === 'config'
      item.createdAt = again ? previous.createdAt : now
      // Disabled by its breaker before the restart: it stays so until enabled over the API.
      const disabled = again ? (previous as StoredSubscription).disabled : undefined
      if (kind === 'subscription' && disabled !== undefined) (item as StoredSubscription).disabled = disabled
      const copy = { ...item, origin: 'config' as const }
      if (JSON.stringify(copy) !== JSON.stringify(previous)) {
        await (kind === 'subscription'
          ? store.put('subscription', copy as StoredSubscription)
          : store.put('route', copy as StoredRoute))
      }
      starts.push(startItem(item, again ? 'again' : 'first'))
    }
    for (const old of stored) {
      if (old.origin === 'config' && !items.some((i) => i.id === old.id)) await store.delete(kind, old.id)
    }
  }
  await keepDeclared('subscription', declared.subscriptions, state.subscriptions, (s, mode) =>
    start.subscription(s, 'config', mode),
  )
  await keepDeclared('route', declared.routes, state.routes, (r, mode) => start.route(r, 'config', mode))
  for (const s of state.subscriptions) {
    if (s.origin === 'config' || declared.has('subscription', s.id)) continue
    try {
      starts.push(start.subscription(s, 'api', 'again'))
    } catch (error) {
      logger.error(
        { subscription: s.id, err: (error as Error).message },
        'stored subscription is no longer valid: skipped',
      )
    }
  }
  for (const r of state.routes) {
    if (r.origin === 'config' || declared.has('route', r.id)) continue
    try {
      starts.push(start.route(r, 'api', 'again'))
    } catch (error) {
      logger.error({ route: r.id, err: (error as Error).message }, 'stored route is no longer valid: skipped')
    }
  }
  await Promise.all(starts)
}

/** A change another bridge made to the shared store. */
export function applyStoreChange(ctx: StoreSyncContext, change: StoreChange): void {
  const { declared, start, webhooks, routes, logger } = ctx
  if (ctx.lifecycle.phase === 'closing') return
  if (change.kind === 'subscription' && change.item?.origin === 'config' && declared.has(change.kind, change.id)) {
    // Another bridge running the same config disabled or enabled it.
    webhooks.syncDisabled(change.id, change.item.disabled)
    return
  }
  if (declared.has(change.kind, change.id) || change.item?.origin === 'config') return
  const run = async () => {
    if (change.kind === 'subscription') {
      if (webhooks.has(change.id)) await webhooks.stop(change.id)
      if (change.item) await start.subscription(change.item, 'api', 'again')
    } else {
      if (routes.has(change.id)) await routes.stop(change.id)
      if (change.item) await start.route(change.item, 'api', 'again')
    }
    logger.info({ kind: change.kind, id: change.id, removed: change.item === undefined }, 'bridge store changed')
  }
  run().catch((error: unknown) =>
    logger.error(
      { kind: change.kind, id: change.id, err: (error as Error)?.message },
      'could not apply a store change',
    ),
  )
}
