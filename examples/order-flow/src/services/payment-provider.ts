// A stand-in for a card processor (Stripe, Adyen): it keeps its own ledger keyed by idempotency
// key, so a charge repeated with the same key (a redelivered message, a restarted service) is
// answered from the ledger and never taken twice. Latency and the share of declined cards come
// from the live configuration.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Sql } from '../lib/db.js'

export const PROVIDER_SCHEMA = `
CREATE TABLE IF NOT EXISTS payment_provider_ledger (
  idempotency_key TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  order_id TEXT NOT NULL,
  amount_cents INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  calls INTEGER NOT NULL,
  created_at BIGINT NOT NULL
);`

export interface ProviderSettings {
  readonly failureRate: number
  readonly latencyMs: { readonly min: number; readonly max: number }
}

export interface ProviderResult {
  readonly outcome: 'succeeded' | 'declined'
  /** The provider's id of the charge or refund: its idempotency key here. */
  readonly id: string
  /** True when the key was seen before and the answer came from the ledger. */
  readonly replayed: boolean
}

export function paymentProvider(db: Sql, settings: () => ProviderSettings) {
  const call = async (kind: 'charge' | 'refund', key: string, orderId: string, amountCents: number) => {
    const { failureRate, latencyMs } = settings()
    await sleep(latencyMs.min + Math.random() * Math.max(0, latencyMs.max - latencyMs.min))
    const outcome = kind === 'refund' || Math.random() >= failureRate ? 'succeeded' : 'declined'
    const inserted = await db.run(
      `INSERT INTO payment_provider_ledger (idempotency_key, kind, order_id, amount_cents, outcome, calls, created_at)
       VALUES ($1, $2, $3, $4, $5, 1, $6) ON CONFLICT (idempotency_key) DO NOTHING`,
      [key, kind, orderId, amountCents, outcome, Date.now()],
    )
    if (inserted === 1) return { outcome, id: key, replayed: false } satisfies ProviderResult
    await db.run('UPDATE payment_provider_ledger SET calls = calls + 1 WHERE idempotency_key = $1', [key])
    const [row] = await db.query<{ outcome: ProviderResult['outcome'] }>(
      'SELECT outcome FROM payment_provider_ledger WHERE idempotency_key = $1',
      [key],
    )
    return { outcome: row?.outcome ?? 'declined', id: key, replayed: true } satisfies ProviderResult
  }
  return {
    charge: (key: string, orderId: string, amountCents: number) => call('charge', key, orderId, amountCents),
    refund: (key: string, orderId: string, amountCents: number) => call('refund', key, orderId, amountCents),
  }
}
