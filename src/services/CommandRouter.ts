/**
 * Executes the brain's commands. Each verified `command` frame is acknowledged at once, run on its
 * own fiber under the frame's `timeout_seconds`, and answered with exactly one `command_result`; the
 * receive loop never waits for a command. Duplicate deliveries of one command id are acknowledged
 * again but not run again.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  CommandFailed,
  type CommandRequest,
  type CommandResult,
  type EngineAdapter,
  type SchedulerAdapter
} from "../engines/EngineAdapter.js"
import { encodeCommandAckPayload, encodeCommandResultPayload } from "../protocol/index.js"
import { AgentConfig } from "./AgentConfig.js"
import { AgentState, type LiveSession } from "./AgentState.js"
import { Dispatcher } from "./Dispatcher.js"
import { EngineRegistry } from "./EngineRegistry.js"
import { Redactor } from "./Redactor.js"

/** How long a command id is remembered for de-duplication, and how many are kept. */
const dedupeTtlMillis = 300_000
const dedupeMaxEntries = 10_000
/** The brain stores at most 8192 characters of a command error. */
const maxErrorChars = 8192

/**
 * The outcome sent in `command_result`.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandOutcome {
  readonly status: "success" | "failed"
  readonly result: Readonly<Record<string, unknown>> | null
  readonly error: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CommandRouterShape {
  /** Acknowledges `command` on `session` and starts it; returns without waiting for it to finish. */
  readonly handle: (command: CommandRequest, session: LiveSession) => Effect.Effect<void>
  /** Runs one command to its outcome (used by `handle`, and by tests and diagnostics). */
  readonly execute: (command: CommandRequest) => Effect.Effect<CommandOutcome>
  /** Emits a complete `schedule.snapshot` event for every scheduler; returns how many were sent. */
  readonly snapshotSchedules: (reason: "boot" | "periodic" | "command") => Effect.Effect<number, CommandFailed>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class CommandRouter extends Context.Tag("z4j-agent/CommandRouter")<CommandRouter, CommandRouterShape>() {}

const text = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined)

const asRecord = (value: unknown): Readonly<Record<string, unknown>> | undefined =>
  value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Readonly<Record<string, unknown>>)
    : undefined

/**
 * The engine a command is meant for, in the order the brain's versions put it: `target.engine`, then
 * `parameters.engine`, then `parameters.filter.engine`, then a `<engine>:` prefix of a task target.
 *
 * @since 0.1.0
 * @category routing
 */
export const commandEngine = (command: CommandRequest): string | undefined =>
  text(command.target.engine) ??
  text(command.parameters.engine) ??
  text(asRecord(command.parameters.filter)?.engine) ??
  (command.target.type === "task" && typeof command.target.id === "string" && command.target.id.includes(":")
    ? command.target.id.slice(0, command.target.id.indexOf(":"))
    : undefined)

const failed = (reason: string) => Effect.fail(new CommandFailed({ reason }))

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  CommandRouterShape,
  never,
  AgentConfig | AgentState | Dispatcher | EngineRegistry | Redactor | Scope.Scope
> = Effect.gen(function* () {
  const state = yield* AgentState
  const registry = yield* EngineRegistry
  const dispatcher = yield* Dispatcher
  const redactor = yield* Redactor
  const scope = yield* Effect.scope
  yield* AgentConfig

  // Command id -> expiry, in insertion order, with the outcome once known so a redelivery after a
  // lost result can be answered without running the command twice.
  const seen = new Map<string, { expiresAtMillis: number; outcome: CommandOutcome | undefined }>()

  const remember = (id: string, nowMillis: number) => {
    for (const [key, entry] of seen) {
      if (entry.expiresAtMillis > nowMillis && seen.size < dedupeMaxEntries) break
      seen.delete(key)
    }
    seen.set(id, { expiresAtMillis: nowMillis + dedupeTtlMillis, outcome: undefined })
  }

  const schedulers = Effect.map(registry.adapters, (adapters) =>
    adapters.flatMap((adapter) => (adapter.scheduler ? [{ adapter, scheduler: adapter.scheduler }] : []))
  )

  const snapshotSchedules = (reason: "boot" | "periodic" | "command"): Effect.Effect<number, CommandFailed> =>
    Effect.gen(function* () {
      const found = yield* schedulers
      const refused = (yield* Ref.get(state.stats)).scheduleSnapshotsRefused
      if (refused !== null && found.length > 0) return yield* failed(refused)
      const failures: Array<string> = []
      let sent = 0
      for (const { adapter, scheduler } of found) {
        // A failed snapshot sends nothing: the brain deletes every schedule missing from a snapshot.
        const entries = yield* scheduler.snapshot.pipe(Effect.either)
        if (entries._tag === "Left") {
          failures.push(`${scheduler.name}: ${entries.left.reason}`)
          yield* Effect.logWarning(`schedule snapshot of ${scheduler.name} failed; nothing sent`, entries.left)
          continue
        }
        yield* dispatcher.emit({
          kind: "schedule.snapshot",
          engine: adapter.engine,
          taskId: "",
          data: { scheduler: scheduler.name, schedules: entries.right, reason }
        })
        sent += 1
      }
      if (failures.length > 0) return yield* failed(`schedule snapshot failed for ${failures.join("; ")}`)
      return sent
    })

  const pickScheduler = (command: CommandRequest) =>
    Effect.gen(function* () {
      const found = yield* schedulers
      const wanted = text(command.target.scheduler) ?? text(command.parameters.scheduler)
      if (wanted !== undefined) {
        const match = found.find(({ scheduler }) => scheduler.name === wanted)
        if (match === undefined) {
          return yield* failed(
            `no scheduler named "${wanted}" on this agent (registered: ${found.map(({ scheduler }) => scheduler.name).join(", ") || "none"})`
          )
        }
        return match.scheduler
      }
      if (found.length === 1) return found[0]!.scheduler
      return yield* failed(
        found.length === 0
          ? `${command.action} needs a scheduler, and none is registered on this agent`
          : `${command.action} does not name its scheduler and this agent has several (${found.map(({ scheduler }) => scheduler.name).join(", ")})`
      )
    })

  const pickAdapter = (command: CommandRequest, action: string) =>
    Effect.gen(function* () {
      const adapters = yield* registry.adapters
      const engine = commandEngine(command)
      const engineNames = [...new Set(adapters.map((adapter) => adapter.engine))]
      let candidates: ReadonlyArray<EngineAdapter>
      if (engine !== undefined) {
        candidates = adapters.filter((adapter) => adapter.engine === engine || adapter.name === engine)
        if (candidates.length === 0) {
          return yield* failed(
            `no adapter for engine "${engine}" is registered on this agent (engines: ${engineNames.join(", ") || "none"})`
          )
        }
      } else if (adapters.length > 0) {
        // No engine named (rate_limit, restart_worker...): whichever adapters can do it are candidates.
        candidates = adapters
      } else {
        return yield* failed(`${action} needs an engine adapter, and none is registered on this agent`)
      }
      const capable = candidates.filter((adapter) => adapter.capabilities.includes(action))
      if (capable.length === 0) {
        const names = candidates.map((adapter) => `${adapter.name} (${adapter.capabilities.join(", ") || "none"})`)
        return yield* failed(`action ${action} is not supported by ${names.join("; ")}`)
      }
      if (capable.length === 1) return capable[0]!
      const owners = capable.filter((adapter) => adapter.handles?.(command) ?? false)
      if (owners.length >= 1) return owners[0]!
      return yield* failed(
        `${capable.length} adapters (${capable.map((adapter) => adapter.name).join(", ")}) could take ${action}, and none claims its target ${JSON.stringify(command.target)}; name the engine in the command`
      )
    })

  const dispatch = (command: CommandRequest): Effect.Effect<CommandResult, CommandFailed> => {
    const action = command.action
    if (action === "schedule.resync") {
      return Effect.map(snapshotSchedules("command"), (count) => ({ schedulers_drained: count }))
    }
    if (action === "schedule.fire") {
      // A fire asks the engine to start the schedule's task now.
      const submit: CommandRequest = {
        ...command,
        action: "submit_task",
        parameters: {
          ...command.parameters,
          name: command.parameters.task_name ?? command.parameters.name
        }
      }
      return Effect.flatMap(pickAdapter(submit, "submit_task"), (adapter) => adapter.execute(submit))
    }
    if (action.startsWith("schedule.")) {
      return Effect.flatMap(pickScheduler(command), (scheduler: SchedulerAdapter) => scheduler.execute(command))
    }
    return Effect.flatMap(pickAdapter(command, action), (adapter) => adapter.execute(command))
  }

  const toOutcome = (command: CommandRequest) => (effect: Effect.Effect<CommandResult, CommandFailed>) =>
    effect.pipe(
      Effect.timeoutFail({
        duration: Math.max(1, command.timeoutSeconds) * 1000,
        onTimeout: () => new CommandFailed({ reason: `timed out after ${command.timeoutSeconds} s` })
      }),
      Effect.map(
        (result): CommandOutcome => ({
          status: "success",
          result: result === null ? null : (redactor.redact(result) as Record<string, unknown>),
          error: null
        })
      ),
      Effect.catchAllCause((cause) => {
        const failure = Cause.failureOption(cause)
        const reason = Option.isSome(failure)
          ? failure.value.reason
          : Cause.isInterruptedOnly(cause)
            ? "interrupted before it finished (the agent is shutting down)"
            : `crashed: ${Cause.pretty(cause).slice(0, 2000)}`
        const result = Option.isSome(failure) && failure.value.result ? failure.value.result : null
        return Effect.succeed<CommandOutcome>({
          status: "failed",
          result: result === null ? null : (redactor.redact(result) as Record<string, unknown>),
          error: reason.length > maxErrorChars ? `${reason.slice(0, maxErrorChars - 1)}…` : reason
        })
      })
    )

  const execute = (command: CommandRequest): Effect.Effect<CommandOutcome> =>
    Effect.suspend(() => dispatch(command)).pipe(toOutcome(command))

  /** Sends on the live session, waiting for a reconnect when there is none. */
  const sendWhenConnected = (type: string, id: string, payload: string, deadlineMillis: number) =>
    state.session.changes.pipe(
      Stream.filterMap((session) => session),
      Stream.mapEffect((session) => Effect.either(session.send(type, id, payload))),
      Stream.filter((sent) => sent._tag === "Right"),
      Stream.take(1),
      Stream.runDrain,
      Effect.timeout(deadlineMillis),
      Effect.catchAll(() =>
        Effect.logWarning(`could not send ${type} for command ${id}: no connection to the brain in time`)
      )
    )

  const handle = (command: CommandRequest, session: LiveSession): Effect.Effect<void> =>
    Effect.gen(function* () {
      const nowMillis = yield* Clock.currentTimeMillis
      yield* session.send("command_ack", command.id, encodeCommandAckPayload()).pipe(Effect.ignore)
      const previous = seen.get(command.id)
      if (previous !== undefined && previous.expiresAtMillis > nowMillis) {
        yield* Effect.logDebug("duplicate command delivery acknowledged again", { command: command.id })
        if (previous.outcome !== undefined) {
          yield* session
            .send("command_result", command.id, encodeCommandResultPayload(previous.outcome))
            .pipe(Effect.ignore)
        }
        return
      }
      remember(command.id, nowMillis)
      yield* Effect.logInfo(`command ${command.action} received`)
      yield* execute(command).pipe(
        Effect.tap((outcome) =>
          Effect.sync(() => {
            const entry = seen.get(command.id)
            if (entry !== undefined) entry.outcome = outcome
          })
        ),
        Effect.tap((outcome) =>
          outcome.status === "success"
            ? Effect.logInfo(`command ${command.action} succeeded`)
            : Effect.logWarning(`command ${command.action} failed: ${outcome.error}`)
        ),
        Effect.flatMap((outcome) =>
          sendWhenConnected(
            "command_result",
            command.id,
            encodeCommandResultPayload(outcome),
            Math.max(60, command.timeoutSeconds) * 1000
          )
        ),
        Effect.annotateLogs({ module: "CommandRouter", command: command.id, action: command.action }),
        Effect.forkIn(scope)
      )
    }).pipe(Effect.annotateLogs({ module: "CommandRouter", command: command.id, action: command.action }))

  return { handle, execute, snapshotSchedules }
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  CommandRouter,
  never,
  AgentConfig | AgentState | Dispatcher | EngineRegistry | Redactor
> = Layer.scoped(CommandRouter, make)
