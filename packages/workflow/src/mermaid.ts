import { type AnyMachine, alternatives, type Transition } from './machine.js'

function nodeId(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)
    ? name
    : `s_${name.replace(/[^A-Za-z0-9_]/g, (c) => `_${c.charCodeAt(0).toString(16)}_`)}`
}

function label(text: string): string {
  // Mermaid ends a label at a newline; ';' and '#' have meanings of their own.
  return text.replace(/[\n;#]/g, ' ')
}

/**
 * The state diagram of a machine in Mermaid syntax (`stateDiagram-v2`): every state, every
 * transition labelled with its event (`after 30m`, `done chargeCard`, `error chargeCard`) and
 * guard name, final states pointing to `[*]`, and each invoked activity as a state description.
 */
export function toMermaid(machine: AnyMachine): string {
  const config = machine.config
  const lines = ['stateDiagram-v2', `  %% ${label(machine.id)} v${machine.version}`]
  for (const name of Object.keys(config.states)) {
    if (nodeId(name) !== name) lines.push(`  state "${name.replace(/"/g, "'")}" as ${nodeId(name)}`)
  }
  lines.push(`  [*] --> ${nodeId(config.initial)}`)
  const edge = (from: string, transition: Transition<unknown, never> | undefined, text: string) => {
    for (const alt of alternatives(transition)) {
      const guard = alt.guard ? ` [${alt.guard.name || 'guard'}]` : ''
      const to = alt.target ?? from
      lines.push(
        `  ${nodeId(from)} --> ${nodeId(to)}: ${label(`${text}${guard}${alt.target === undefined ? ' (internal)' : ''}`)}`,
      )
    }
  }
  for (const [name, state] of Object.entries(config.states)) {
    if (state.invoke) lines.push(`  ${nodeId(name)}: invoke ${label(state.invoke.activity)}`)
    const child =
      state.spawn && (typeof state.spawn.machine === 'string' ? state.spawn.machine : state.spawn.machine.id)
    if (state.spawn) lines.push(`  ${nodeId(name)}: spawn ${label(String(child))}`)
    if (state.type === 'final') {
      lines.push(`  ${nodeId(name)} --> [*]`)
      continue
    }
    for (const [type, t] of Object.entries(state.on ?? {})) edge(name, t as Transition<unknown, never>, type)
    if (state.invoke) {
      edge(name, state.invoke.onDone as Transition<unknown, never>, `done ${state.invoke.activity}`)
      edge(name, state.invoke.onError as Transition<unknown, never>, `error ${state.invoke.activity}`)
    }
    if (state.spawn) {
      edge(name, state.spawn.onDone as Transition<unknown, never>, `done ${child}`)
      edge(name, state.spawn.onError as Transition<unknown, never>, `error ${child}`)
    }
    for (const [delay, t] of Object.entries(state.after ?? {}))
      edge(name, t as Transition<unknown, never>, `after ${delay}`)
    for (const [type, t] of Object.entries(config.on ?? {})) {
      if (state.on && Object.hasOwn(state.on, type)) continue
      edge(name, t as Transition<unknown, never>, type)
    }
  }
  return `${lines.join('\n')}\n`
}
