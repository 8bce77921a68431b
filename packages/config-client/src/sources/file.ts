import { type FSWatcher, watch as fsWatch } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname, extname, resolve } from 'node:path'
import { durationSchema } from '@backplane/internal'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { renamed } from '../deprecated.js'
import { ConfigError, messageOf } from '../errors.js'
import { parseOptions } from '../options.js'
import { type ConfigTree, isPlainObject } from '../tree.js'
import type { ConfigSource, SourceContext, Unwatch } from './types.js'

const fileOptionsSchema = z.strictObject({
  /** `json` or `yaml`; by default from the extension (`.json` → JSON, anything else → YAML, a superset of JSON). */
  format: z.enum(['json', 'yaml']).optional(),
  /** A missing file counts as empty instead of failing the start. */
  optional: z.boolean().default(false),
  /** Reload when the file changes (default true). */
  watch: z.boolean().default(true),
  /** Wait this long after the last file event before reading: editors save in several steps. */
  settle: durationSchema().default(30),
  /** Name in events and the snapshot (default `file:<path>`). */
  name: z.string().min(1).optional(),
})

export type FileSourceOptions = z.input<typeof fileOptionsSchema> & {
  /** @deprecated use settle */
  settleMs?: number | undefined
}

/**
 * A JSON or YAML file. It is read at start (a missing file fails the start unless `optional`, a
 * file that does not parse always does) and, with `watch` (the default), read again whenever it
 * changes, also when an editor replaces it by renaming. A reload that does not parse is reported as
 * an `error` event and the file's last good values stay in force.
 */
export function file(path: string, options: FileSourceOptions = {}): ConfigSource {
  const opts = parseOptions(
    fileOptionsSchema,
    renamed(options, [{ from: 'settleMs', to: 'settle' }], 'file source'),
    'file source',
  )
  if (typeof path !== 'string' || path.length === 0)
    throw new ConfigError('CONFIG_INVALID_OPTIONS', 'file(path): expected the path of a JSON or YAML file', {
      details: ['path: expected a non-empty string'],
    })
  const absolute = resolve(path)
  const format = opts.format ?? (extname(absolute).toLowerCase() === '.json' ? 'json' : 'yaml')
  const name = opts.name ?? `file:${path}`
  let lastText: string | undefined
  // For the staleness metric: when the values served were last known to be the file's, and whether a
  // working watch keeps them so (until a reload fails or the watch breaks).
  let currentAt: number | undefined
  let followed = false
  const readGood = (watched: boolean) => {
    currentAt = Date.now()
    followed = watched
  }
  const lostTrack = () => {
    if (followed) currentAt = Date.now()
    followed = false
  }

  async function read(): Promise<{ text: string; tree: ConfigTree } | undefined> {
    let text: string
    try {
      text = await readFile(absolute, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new ConfigError('CONFIG_SOURCE_FAILED', `cannot read ${absolute}: ${messageOf(error)}`, {
        source: name,
        keys: [absolute],
        cause: error,
      })
    }
    return { text, tree: parseText(text, format, absolute, name) }
  }

  return {
    name,
    kind: 'file',
    keyOf: () => absolute,
    currentAsOf: () => (followed ? Date.now() : currentAt),
    async load() {
      const result = await read()
      if (result === undefined) {
        if (!opts.optional)
          throw new ConfigError(
            'CONFIG_SOURCE_FAILED',
            `config file ${absolute} does not exist (pass { optional: true } to file() if it may be missing)`,
            { source: name, keys: [absolute] },
          )
        lastText = ''
        readGood(false)
        return {}
      }
      lastText = result.text
      readGood(false)
      return result.tree
    },
    watch(onChange, context: SourceContext): Unwatch | undefined {
      if (!opts.watch) return undefined
      let watcher: FSWatcher | undefined
      let timer: NodeJS.Timeout | undefined
      let closed = false
      let reading = Promise.resolve()
      let watchWorks = false

      const reload = async () => {
        if (closed) return
        try {
          const result = await read()
          if (closed) return
          if (result === undefined) {
            if (lastText === '' || opts.optional) readGood(watchWorks)
            else lostTrack()
            if (lastText === '') return
            if (opts.optional) {
              lastText = ''
              onChange({}, { keys: [absolute] })
            } else {
              context.reportError(
                new ConfigError(
                  'CONFIG_SOURCE_FAILED',
                  `config file ${absolute} was removed; its last values stay in force`,
                  { source: name, keys: [absolute] },
                ),
              )
            }
            return
          }
          readGood(watchWorks)
          if (result.text === lastText) return
          lastText = result.text
          onChange(result.tree, { keys: [absolute] })
        } catch (error) {
          // Keep lastText: the same broken content is reported once, a fix is picked up.
          lostTrack()
          context.reportError(error)
        }
      }
      // Reads run one after the other, so a slow read never overwrites a newer one.
      const schedule = () => {
        clearTimeout(timer)
        timer = setTimeout(() => {
          reading = reading.then(reload)
        }, opts.settle)
      }

      try {
        // The directory, not the file: editors that save by rename replace the file's inode.
        watcher = fsWatch(dirname(absolute), { persistent: true }, (_event, changed) => {
          if (changed === null || changed === basename(absolute)) schedule()
        })
        watchWorks = true
        readGood(true)
        watcher.on('error', (error) => {
          watchWorks = false
          lostTrack()
          context.reportError(
            new ConfigError('CONFIG_SOURCE_FAILED', `watching ${absolute} failed: ${messageOf(error)}`, {
              source: name,
              keys: [absolute],
              cause: error,
            }),
          )
        })
      } catch (error) {
        context.logger.warn(
          { source: name, err: messageOf(error) },
          'cannot watch the config file (its directory is missing?): changes will not be picked up',
        )
      }
      // A change between load() and the watch being set up would otherwise go unnoticed.
      schedule()
      return () => {
        closed = true
        watchWorks = false
        lostTrack()
        clearTimeout(timer)
        watcher?.close()
      }
    },
  }
}

function parseText(text: string, format: 'json' | 'yaml', path: string, name: string): ConfigTree {
  let value: unknown
  try {
    value = format === 'json' ? JSON.parse(text) : parseYaml(text, { prettyErrors: true })
  } catch (error) {
    throw new ConfigError(
      'CONFIG_SOURCE_FAILED',
      `config file ${path} is not valid ${format.toUpperCase()}: ${messageOf(error)}`,
      { source: name, keys: [path], cause: error },
    )
  }
  if (value === null || value === undefined) return {}
  if (!isPlainObject(value))
    throw new ConfigError(
      'CONFIG_SOURCE_FAILED',
      `config file ${path} must hold an object (a mapping) at the top level, not ${Array.isArray(value) ? 'a list' : typeof value}`,
      { source: name, keys: [path] },
    )
  return value
}
