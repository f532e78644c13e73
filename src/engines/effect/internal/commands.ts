import * as Effect from "effect/Effect"
import { CommandFailed, type CommandRequest } from "../../EngineAdapter.js"
import type { Priority } from "../Tasks.js"

const priorities: ReadonlySet<string> = new Set<Priority>(["critical", "high", "normal", "low"])

const fail = (reason: string) => Effect.fail(new CommandFailed({ reason }))

const typeName = (value: unknown): string => (value === null ? "null" : Array.isArray(value) ? "a list" : typeof value)

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** A string parameter, or undefined when it is missing, null or empty. */
export const optionalString = (value: unknown): string | undefined =>
  typeof value === "string" && value !== "" ? value : undefined

/**
 * Reads the task id of `cancel_task` and `retry_task`: `parameters.task_id`, else the target id
 * without its `<engine>:` prefix (the brain writes targets as `"<engine>:<task_id>"`).
 */
export const taskId = (command: CommandRequest, engine: string): Effect.Effect<string, CommandFailed> => {
  const id = optionalTaskId(command, engine)
  if (id !== undefined) return Effect.succeed(id)
  return fail(
    `${command.action} needs the task id in parameters.task_id or in the target id, but the command has neither`
  )
}

/** Reads the task id as {@link taskId} does, giving undefined when the command has none. */
export const optionalTaskId = (command: CommandRequest, engine: string): string | undefined => {
  const fromParameters = optionalString(command.parameters.task_id)
  if (fromParameters !== undefined) return fromParameters
  const target = optionalString(command.target.id)
  if (target === undefined) return undefined
  return target.startsWith(`${engine}:`) ? target.slice(engine.length + 1) : target
}

/** Reads a list parameter such as `args`. A null or missing value gives undefined. */
export const list = (
  command: CommandRequest,
  key: string
): Effect.Effect<ReadonlyArray<unknown> | undefined, CommandFailed> => {
  const value = command.parameters[key]
  if (value === undefined || value === null) return Effect.succeed(undefined)
  if (Array.isArray(value)) return Effect.succeed(value)
  return fail(`${command.action}: parameters.${key} must be a list, but it is ${typeName(value)}`)
}

/** Reads an object parameter such as `kwargs`. A null or missing value gives undefined. */
export const object = (
  command: CommandRequest,
  key: string
): Effect.Effect<Readonly<Record<string, unknown>> | undefined, CommandFailed> => {
  const value = command.parameters[key]
  if (value === undefined || value === null) return Effect.succeed(undefined)
  if (isRecord(value)) return Effect.succeed(value)
  return fail(`${command.action}: parameters.${key} must be an object, but it is ${typeName(value)}`)
}

/**
 * Reads the priority label. Brain 1.6.9 sends labels. Anything else (a number, an unknown label) is
 * dropped, because the brain would store it as `normal` anyway.
 */
export const priority = (command: CommandRequest): Priority | undefined => {
  const value = command.parameters.priority
  return typeof value === "string" && priorities.has(value) ? (value as Priority) : undefined
}

/**
 * Computes the wait before the first attempt, in milliseconds, from `eta_seconds` (which the brain
 * sends), else from `eta` as seconds or as an ISO 8601 time. A time in the past gives 0.
 */
export const delayMillis = (command: CommandRequest, nowMillis: number): Effect.Effect<number, CommandFailed> => {
  const seconds = command.parameters.eta_seconds ?? null
  if (seconds !== null) {
    if (typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0) return Effect.succeed(seconds * 1000)
    return fail(
      `${command.action}: parameters.eta_seconds must be a number of seconds >= 0, but it is ${String(seconds)}`
    )
  }
  const eta = command.parameters.eta ?? null
  if (eta === null) return Effect.succeed(0)
  if (typeof eta === "number" && Number.isFinite(eta)) return Effect.succeed(Math.max(0, eta * 1000))
  if (typeof eta === "string") {
    const at = Date.parse(eta)
    if (!Number.isNaN(at)) return Effect.succeed(Math.max(0, at - nowMillis))
  }
  return fail(
    `${command.action}: parameters.eta must be an ISO 8601 time or a number of seconds, but it is ${JSON.stringify(eta)}`
  )
}
