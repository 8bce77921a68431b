// What the shop sells. Prices in cents. The limited edition runs out during the demo, so some
// orders fail at the stock step after they were paid, and the saga refunds them.
export interface Product {
  readonly sku: string
  readonly name: string
  readonly priceCents: number
  /** Overrides `inventory.initialStock`. */
  readonly stock?: number
}

export const catalog: readonly Product[] = [
  { sku: 'mug', name: 'Backplane mug', priceCents: 1200 },
  { sku: 'tee', name: 'Backplane T-shirt', priceCents: 2500 },
  { sku: 'hoodie', name: 'Backplane hoodie', priceCents: 5500 },
  { sku: 'sticker', name: 'Sticker pack', priceCents: 400 },
  { sku: 'limited', name: 'Limited edition print', priceCents: 9900, stock: 15 },
]

export const productBySku: ReadonlyMap<string, Product> = new Map(catalog.map((p) => [p.sku, p]))
