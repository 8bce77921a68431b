/** A binary min-heap on `at`: the engine's timers and delayed task attempts. */
export interface HeapItem {
  at: number
}

export class MinHeap<T extends HeapItem> {
  private readonly items: T[] = []

  get size(): number {
    return this.items.length
  }

  peek(): T | undefined {
    return this.items[0]
  }

  push(item: T): void {
    const items = this.items
    items.push(item)
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((items[parent] as T).at <= item.at) break
      items[i] = items[parent] as T
      i = parent
    }
    items[i] = item
  }

  pop(): T | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || last === undefined) return top
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= items.length) break
      const right = left + 1
      const child = right < items.length && (items[right] as T).at < (items[left] as T).at ? right : left
      if ((items[child] as T).at >= last.at) break
      items[i] = items[child] as T
      i = child
    }
    items[i] = last
    return top
  }

  clear(): void {
    this.items.length = 0
  }
}
