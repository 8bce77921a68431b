/**
 * Which lines are worth decoding and parsing. Most of a search's time goes into lines that cannot
 * match; finding those in the raw bytes, with the native `Buffer#indexOf`, keeps the cost per
 * byte close to that of decompressing them.
 */
export interface LineFilter {
  /** A line can only match when it holds one of these byte strings; none: every line can. */
  needles: readonly Buffer[]
  /** Given a line that passed `needles` (without its line break): false when it cannot match. */
  accepts?: ((line: Buffer) => boolean) | undefined
}

/** Receives each line that may match, decoded, with its 1-based number in the input. */
export type LineHandler = (raw: string, lineNumber: number) => void

export interface LineScanner {
  push(chunk: Buffer): void
  /** Hands on the last line when the input did not end with a line break. */
  end(): void
  /** Lines seen so far, the unfinished last one not included. */
  readonly lines: number
}

const LF = 10
const CR = 13

/**
 * Splits the input into lines as `readline` does for `\n` and `\r\n` breaks and hands on those
 * that may match. Every line is counted (their numbers are part of a record), but only candidate
 * lines are decoded. A line split across chunks is joined before it is looked at.
 */
export function createLineScanner(filter: LineFilter, onLine: LineHandler): LineScanner {
  const { needles, accepts } = filter
  let lines = 0
  let carry: Buffer[] = [] // the unfinished line, in pieces (a long line must not be copied each chunk)

  function consider(buf: Buffer, start: number, end: number): void {
    const stop = end > start && buf[end - 1] === CR ? end - 1 : end
    if (accepts !== undefined && !accepts(buf.subarray(start, stop))) return
    onLine(buf.toString('utf8', start, stop), lines)
  }

  function countLines(buf: Buffer, from: number, to: number): void {
    for (let p = buf.indexOf(LF, from); p !== -1 && p < to; p = buf.indexOf(LF, p + 1)) lines++
  }

  /** Lines in [from, to) of `buf`, where `buf[to - 1]` is a line break. */
  function scan(buf: Buffer, from: number, to: number): void {
    if (needles.length === 0) {
      for (let start = from; start < to; ) {
        const end = buf.indexOf(LF, start)
        lines++
        consider(buf, start, end)
        start = end + 1
      }
      return
    }
    const next = needles.map(() => -2) // next occurrence of each needle; -2: not looked for yet
    let start = from
    while (start < to) {
      let hit = -1
      for (let i = 0; i < needles.length; i++) {
        let at = next[i] as number
        if (at !== -1 && at < start) {
          at = buf.indexOf(needles[i] as Buffer, start)
          next[i] = at
        }
        if (at !== -1 && (hit === -1 || at < hit)) hit = at
      }
      if (hit === -1 || hit >= to) break
      const lineStart = buf.lastIndexOf(LF, hit) + 1
      countLines(buf, start, lineStart)
      const end = buf.indexOf(LF, hit)
      lines++
      consider(buf, lineStart, end)
      start = end + 1
    }
    countLines(buf, start, to)
  }

  return {
    push(chunk) {
      let from = 0
      if (carry.length > 0) {
        const end = chunk.indexOf(LF)
        if (end === -1) {
          carry.push(chunk)
          return
        }
        carry.push(chunk.subarray(0, end + 1))
        const line = Buffer.concat(carry)
        carry = []
        scan(line, 0, line.length)
        from = end + 1
      }
      const last = chunk.lastIndexOf(LF)
      if (last >= from) {
        scan(chunk, from, last + 1)
        from = last + 1
      }
      // Copied: a slice would keep the whole chunk alive for the sake of its last few bytes.
      if (from < chunk.length) carry.push(Buffer.from(chunk.subarray(from)))
    },
    end() {
      if (carry.length === 0) return
      const line = Buffer.concat([...carry, Buffer.from([LF])])
      carry = []
      scan(line, 0, line.length)
    },
    get lines() {
      return lines
    },
  }
}
