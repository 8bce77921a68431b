/** Something that did not stop the search: an unreadable file, a missing directory, non-JSON lines. */
export interface SearchWarning {
  /** The file or directory concerned. */
  path: string
  message: string
  cause?: unknown
}

/** One matching line. */
export interface LogRecord {
  /** The line parsed as JSON. */
  record: Record<string, unknown>
  /** The line exactly as in the file, without its line break. */
  raw: string
  /** Path of the file it was read from. */
  file: string
  /** 1-based line number in the (decompressed) file. */
  lineNumber: number
  /** `time` as epoch ms, or undefined when missing or unparsable. */
  time: number | undefined
  /** `level` as a number, or undefined for a label that is not one of pino's defaults. */
  level: number | undefined
  /** `service.name`, else the service the file is named for. */
  service: string | undefined
}

/** The checked options of one search. */
export interface Query {
  dirs: string[]
  traceId: string | undefined
  minLevel: number | undefined
  since: number
  until: number
  services: ReadonlySet<string> | undefined
  /** The text of a string `grep`: lines without it (or a backslash) cannot match. */
  grepText: string | undefined
  grep: ((text: string) => boolean) | undefined
  limit: number
  warn: (warning: SearchWarning) => void
}

/** A file to read and the times its records can have, [from, to). */
export interface PlannedFile {
  path: string
  compressed: boolean
  /** The service the file is named for; its records then match `service` without looking inside. */
  service: string | undefined
  from: number
  to: number
}
