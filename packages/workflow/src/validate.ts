import { DURATION_EXPECTED, parseDuration } from '@backplane/internal'
import { WorkflowError } from './errors.js'
import { type AnyMachine, alternatives, isMachine, type Transition } from './machine.js'
import { retryPolicyProblems } from './retry.js'

const STATE_KEYS = new Set(['type', 'description', 'entry', 'exit', 'on', 'invoke', 'spawn', 'after'])
const SPAWN_KEYS = new Set(['machine', 'input', 'id', 'onDone', 'onError', 'onParentExit'])
const TRANSITION_KEYS = new Set(['target', 'guard', 'assign', 'emit', 'description'])
const ACTION_KEYS = new Set(['assign', 'emit'])
const INVOKE_KEYS = new Set(['activity', 'input', 'onDone', 'onError', 'retry', 'timeout'])
const MACHINE_KEYS = new Set([
  'id',
  'version',
  'context',
  'init',
  'initial',
  'on',
  'states',
  'migrations',
  'description',
])

export interface ValidateOptions {
  /** Names of the registered activities; undefined skips the check (an engine that runs no activities). */
  readonly activities?: ReadonlySet<string> | undefined
  /** Whether a broker was given: machines that emit need one. Undefined skips the check. */
  readonly broker?: boolean | undefined
  /** Registered machine id -> its versions: what a `spawn` may start. Undefined skips the check. */
  readonly machines?: ReadonlyMap<string, ReadonlySet<number>> | undefined
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function unknownKeys(value: Record<string, unknown>, allowed: Set<string>): string[] {
  return Object.keys(value).filter((key) => !allowed.has(key))
}

/** Every problem of one machine, as messages naming the machine, state and field. */
export function machineProblems(machine: AnyMachine, options: ValidateOptions = {}): string[] {
  const problems: string[] = []
  const config = machine.config as unknown as Record<string, unknown>
  const name = `machine ${JSON.stringify(machine.id)}${typeof machine.version === 'number' ? ` v${machine.version}` : ''}`
  if (typeof machine.id !== 'string' || machine.id === '') problems.push(`${name}: id: expected a non-empty string`)
  if (!Number.isInteger(machine.version) || machine.version < 1)
    problems.push(`${name}: version: expected a positive integer, got ${JSON.stringify(machine.version)}`)
  for (const key of unknownKeys(config, MACHINE_KEYS)) problems.push(`${name}: unknown field ${JSON.stringify(key)}`)
  if (!isObject(config.context) || typeof (config.context as { safeParse?: unknown }).safeParse !== 'function')
    problems.push(`${name}: context: expected a zod schema of the context`)
  if (config.init !== undefined && typeof config.init !== 'function')
    problems.push(`${name}: init: expected a function (input) => context`)
  const states = config.states
  if (!isObject(states) || Object.keys(states).length === 0) {
    problems.push(`${name}: states: expected an object with at least one state`)
    return problems
  }
  const has = (state: string) => Object.hasOwn(states, state)
  if (typeof config.initial !== 'string' || !has(config.initial))
    problems.push(
      `${name}: initial: ${JSON.stringify(config.initial)} is not one of its states (${Object.keys(states).join(', ')})`,
    )

  const edges = new Map<string, Set<string>>()
  const checkTransition = (where: string, from: string | undefined, transition: unknown) => {
    const list = Array.isArray(transition) ? transition : [transition]
    if (list.length === 0) problems.push(`${where}: expected a target or a transition, got an empty list`)
    for (const [index, item] of list.entries()) {
      const at = Array.isArray(transition) ? `${where}[${index}]` : where
      if (typeof item === 'string') {
        if (!has(item)) problems.push(`${at}: unknown target state ${JSON.stringify(item)}`)
        else if (from !== undefined) edges.get(from)?.add(item)
        continue
      }
      if (!isObject(item)) {
        problems.push(`${at}: expected a target state name or { target, guard, assign, emit }`)
        continue
      }
      for (const key of unknownKeys(item, TRANSITION_KEYS)) problems.push(`${at}: unknown field ${JSON.stringify(key)}`)
      for (const key of ['guard', 'assign', 'emit'] as const)
        if (item[key] !== undefined && typeof item[key] !== 'function')
          problems.push(`${at}.${key}: expected a function`)
      if (item.target !== undefined) {
        if (typeof item.target !== 'string' || !has(item.target))
          problems.push(`${at}: unknown target state ${JSON.stringify(item.target)}`)
        else if (from !== undefined) edges.get(from)?.add(item.target)
      }
    }
  }
  const checkActions = (where: string, actions: unknown) => {
    if (actions === undefined) return
    if (!isObject(actions)) {
      problems.push(`${where}: expected { assign?, emit? }`)
      return
    }
    for (const key of unknownKeys(actions, ACTION_KEYS)) problems.push(`${where}: unknown field ${JSON.stringify(key)}`)
    for (const key of ['assign', 'emit'] as const)
      if (actions[key] !== undefined && typeof actions[key] !== 'function')
        problems.push(`${where}.${key}: expected a function`)
  }

  for (const stateName of Object.keys(states)) edges.set(stateName, new Set())
  const finals = new Set<string>()
  for (const [stateName, raw] of Object.entries(states)) {
    const where = `${name}: state ${stateName}`
    if (!isObject(raw)) {
      problems.push(`${where}: expected a state object`)
      continue
    }
    for (const key of unknownKeys(raw, STATE_KEYS)) problems.push(`${where}: unknown field ${JSON.stringify(key)}`)
    if (raw.type !== undefined && raw.type !== 'final') problems.push(`${where}: type: expected 'final' or nothing`)
    const final = raw.type === 'final'
    if (final) {
      finals.add(stateName)
      for (const key of ['on', 'invoke', 'spawn', 'after', 'exit'])
        if (raw[key] !== undefined) problems.push(`${where}: a final state cannot have ${key}`)
    }
    checkActions(`${where}.entry`, raw.entry)
    checkActions(`${where}.exit`, raw.exit)
    if (raw.on !== undefined) {
      if (!isObject(raw.on)) problems.push(`${where}.on: expected { EVENT: transition }`)
      else for (const [type, t] of Object.entries(raw.on)) checkTransition(`${where}.on.${type}`, stateName, t)
    }
    if (raw.after !== undefined) {
      if (!isObject(raw.after)) problems.push(`${where}.after: expected { "30m": transition }`)
      else
        for (const [delay, t] of Object.entries(raw.after)) {
          if (parseDuration(delay) === undefined)
            problems.push(`${where}.after: invalid delay ${JSON.stringify(delay)}: expected ${DURATION_EXPECTED}`)
          checkTransition(`${where}.after.${delay}`, stateName, t)
        }
    }
    if (raw.spawn !== undefined) problems.push(...spawnProblems(`${where}.spawn`, raw.spawn, options.machines))
    if (raw.spawn !== undefined && raw.invoke !== undefined)
      problems.push(
        `${where}: has both invoke and spawn: a state waits for one thing (spawn a child whose state invokes the activity)`,
      )
    if (isObject(raw.spawn)) {
      if (raw.spawn.onDone !== undefined) checkTransition(`${where}.spawn.onDone`, stateName, raw.spawn.onDone)
      if (raw.spawn.onError !== undefined) checkTransition(`${where}.spawn.onError`, stateName, raw.spawn.onError)
    }
    if (raw.invoke !== undefined) {
      const invoke = raw.invoke
      if (!isObject(invoke) || typeof invoke.activity !== 'string' || invoke.activity === '') {
        problems.push(`${where}.invoke: expected { activity: 'name', onDone?, onError?, input?, retry?, timeout? }`)
      } else {
        for (const key of unknownKeys(invoke, INVOKE_KEYS))
          problems.push(`${where}.invoke: unknown field ${JSON.stringify(key)}`)
        if (options.activities && !options.activities.has(invoke.activity))
          problems.push(
            `${where}.invoke: activity ${JSON.stringify(invoke.activity)} is not registered: pass it in createEngine({ activities: { ${invoke.activity}: async (input, ctx) => … } })` +
              (options.activities.size > 0 ? ` (registered: ${[...options.activities].join(', ')})` : ''),
          )
        if (invoke.input !== undefined && typeof invoke.input !== 'function')
          problems.push(`${where}.invoke.input: expected a function (context) => input`)
        if (invoke.onDone !== undefined) checkTransition(`${where}.invoke.onDone`, stateName, invoke.onDone)
        if (invoke.onError !== undefined) checkTransition(`${where}.invoke.onError`, stateName, invoke.onError)
        problems.push(...retryPolicyProblems(invoke.retry, `${where}.invoke.retry`))
        if (invoke.timeout !== undefined && parseDuration(invoke.timeout as string) === undefined)
          problems.push(
            `${where}.invoke.timeout: invalid duration ${JSON.stringify(invoke.timeout)}: expected ${DURATION_EXPECTED}`,
          )
      }
    }
  }
  const globalTargets: string[] = []
  if (config.on !== undefined) {
    if (!isObject(config.on)) problems.push(`${name}: on: expected { EVENT: transition }`)
    else
      for (const [type, t] of Object.entries(config.on)) {
        checkTransition(`${name}: on.${type}`, undefined, t)
        for (const alt of alternatives(t as Transition<unknown, never>))
          if (alt.target && has(alt.target)) globalTargets.push(alt.target)
      }
  }
  if (config.migrations !== undefined) {
    if (!isObject(config.migrations))
      problems.push(`${name}: migrations: expected { <from version>: (snapshot) => snapshot }`)
    else
      for (const [from, hook] of Object.entries(config.migrations)) {
        const version = Number(from)
        if (!Number.isInteger(version) || version < 1 || version >= machine.version)
          problems.push(
            `${name}: migrations.${from}: expected a key that is an earlier version (1 to ${machine.version - 1})`,
          )
        if (typeof hook !== 'function')
          problems.push(`${name}: migrations.${from}: expected a function ({ state, context }) => { state, context }`)
      }
  }

  // Reachability from the initial state (machine-wide transitions apply in every non-final state).
  if (typeof config.initial === 'string' && has(config.initial)) {
    const seen = new Set<string>([config.initial])
    const queue = [config.initial]
    while (queue.length > 0) {
      const current = queue.shift() as string
      const next = [...(edges.get(current) ?? []), ...(finals.has(current) ? [] : globalTargets)]
      for (const target of next)
        if (!seen.has(target)) {
          seen.add(target)
          queue.push(target)
        }
    }
    for (const stateName of Object.keys(states))
      if (!seen.has(stateName))
        problems.push(`${name}: state ${stateName} is unreachable from the initial state ${config.initial}`)
  }

  if (options.broker === false) {
    const emits: string[] = []
    const hasEmit = (value: unknown) => isObject(value) && typeof value.emit === 'function'
    const transitionEmits = (t: unknown) => (Array.isArray(t) ? t : [t]).some(hasEmit)
    for (const [stateName, raw] of Object.entries(states)) {
      if (!isObject(raw)) continue
      if (hasEmit(raw.entry) || hasEmit(raw.exit)) emits.push(stateName)
      else if (isObject(raw.on) && Object.values(raw.on).some(transitionEmits)) emits.push(stateName)
      else if (isObject(raw.after) && Object.values(raw.after).some(transitionEmits)) emits.push(stateName)
      else if (isObject(raw.invoke) && (transitionEmits(raw.invoke.onDone) || transitionEmits(raw.invoke.onError)))
        emits.push(stateName)
      else if (isObject(raw.spawn) && (transitionEmits(raw.spawn.onDone) || transitionEmits(raw.spawn.onError)))
        emits.push(stateName)
    }
    if (isObject(config.on) && Object.values(config.on).some(transitionEmits)) emits.push('(machine-wide on)')
    if (emits.length > 0)
      problems.push(
        `${name}: emits messages (in ${emits.join(', ')}) but createEngine was given no broker to publish them: pass { broker }`,
      )
  }
  return problems
}

function spawnProblems(
  where: string,
  spawn: unknown,
  machines: ReadonlyMap<string, ReadonlySet<number>> | undefined,
): string[] {
  if (!isObject(spawn) || (typeof spawn.machine !== 'string' && !isMachine(spawn.machine)))
    return [`${where}: expected { machine: 'id' or a machine, input?, id?, onDone?, onError?, onParentExit? }`]
  const problems = unknownKeys(spawn, SPAWN_KEYS).map((key) => `${where}: unknown field ${JSON.stringify(key)}`)
  for (const fn of ['input', 'id'])
    if (spawn[fn] !== undefined && typeof spawn[fn] !== 'function')
      problems.push(`${where}.${fn}: expected a function of the context`)
  if (spawn.onParentExit !== undefined && spawn.onParentExit !== 'cancel' && spawn.onParentExit !== 'abandon')
    problems.push(`${where}.onParentExit: expected 'cancel' or 'abandon'`)
  const id = typeof spawn.machine === 'string' ? spawn.machine : (spawn.machine as AnyMachine).id
  const version = typeof spawn.machine === 'string' ? undefined : (spawn.machine as AnyMachine).version
  const versions = machines?.get(id)
  if (machines && (!versions || (version !== undefined && !versions.has(version))))
    problems.push(
      `${where}: machine ${JSON.stringify(id)}${version === undefined ? '' : ` v${version}`} is not registered: pass it in createEngine({ machines })`,
    )
  return problems
}

/** Validates machines (each, and no id+version twice); throws one WORKFLOW_INVALID_DEFINITION listing every problem. */
export function validateMachines(machines: readonly unknown[], options: ValidateOptions = {}): void {
  const problems: string[] = []
  const seen = new Set<string>()
  const registered = new Map<string, Set<number>>()
  for (const machine of machines)
    if (isMachine(machine)) registered.set(machine.id, (registered.get(machine.id) ?? new Set()).add(machine.version))
  options = { machines: registered, ...options }
  for (const [index, machine] of machines.entries()) {
    if (!isMachine(machine)) {
      problems.push(`machines[${index}]: expected a machine from defineMachine(...)`)
      continue
    }
    const key = `${machine.id}@${machine.version}`
    if (seen.has(key)) problems.push(`machine ${JSON.stringify(machine.id)} v${machine.version} is registered twice`)
    seen.add(key)
    problems.push(...machineProblems(machine, options))
  }
  if (problems.length > 0) {
    throw new WorkflowError(
      'WORKFLOW_INVALID_DEFINITION',
      `invalid workflow definition${problems.length > 1 ? `s (${problems.length} problems)` : ''}: ${problems.join('; ')}`,
      { details: problems },
    )
  }
}
