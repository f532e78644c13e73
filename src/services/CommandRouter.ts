/**
 * Executes the brain's commands. Each verified `command` frame is acknowledged at once, run on its
 * own fiber under the frame's `timeout_seconds`, and answered with exactly one `command_result`; the
 * receive loop never waits for a command. Duplicate deliveries of one command id are acknowledged
 * again but not run again.
 *
 * It also owns the schedule snapshots. When the brain hands a scheduler a stream epoch
 * (`schedule.external.activate`, z4j 1.13), that scheduler's snapshots become sequenced projections (see
 * `ScheduleProjection`). Other brains get the legacy `schedule.snapshot` events.
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
import * as SubscriptionRef from "effect/SubscriptionRef"
import {
  CommandFailed,
  type CommandRequest,
  type CommandResult,
  type EngineAdapter,
  type SchedulerAdapter
} from "../engines/EngineAdapter.js"
import {
  encodeCommandAckPayload,
  encodeCommandResultPayload,
  type JsonValue,
  renderCanonical,
  ScheduleProjection
} from "../protocol/index.js"
import { AgentConfig } from "./AgentConfig.js"
import { AgentState, type LiveSession } from "./AgentState.js"
import { Dispatcher } from "./Dispatcher.js"
import { EngineRegistry } from "./EngineRegistry.js"
import { ProjectionStore } from "./ProjectionStore.js"
import { Redactor } from "./Redactor.js"

/** How long a command id is remembered for de-duplication, and how many are kept. */
const dedupeTtlMillis = 300_000
const dedupeMaxEntries = 10_000
/** The brain stores at most 8192 characters of a command error. */
const maxErrorChars = 8192
/**
 * How long the boot snapshot waits for the brain's stream activations. z4j 1.13 sends them right after
 * the handshake, and a brain that sends none gets legacy snapshots after this wait.
 */
const activationGraceMillis = 3_000
/** Room left in a frame for the envelope and the event's other fields. */
const frameEnvelopeBytes = 4_096

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
  /**
   * Emits a complete snapshot of every scheduler: a sequenced projection for a scheduler with a stream
   * on the live session, a legacy `schedule.snapshot` event otherwise. Returns how many were sent. At
   * `boot` it first waits up to 3 s for the brain's activations, and skips the schedulers activated
   * meanwhile, since each activation already sent a snapshot.
   */
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
  const projectionStore = yield* Effect.serviceOption(ProjectionStore)
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

  // Scheduler name -> the stream the brain handed it, the session it belongs to, and the next sequence.
  // A stream is valid only on its own session: the brain fences it when that session ends.
  const streams = yield* SubscriptionRef.make<
    ReadonlyMap<
      string,
      {
        readonly authority: ScheduleProjection.StreamAuthority
        readonly sessionId: string
        readonly nextSequence: number
      }
    >
  >(new Map())
  // Sequences must reach the buffer in the order they are taken, so one snapshot is built at a time.
  const snapshotLock = yield* Effect.makeSemaphore(1)

  const liveStream = (name: string) =>
    Effect.gen(function* () {
      const session = yield* SubscriptionRef.get(state.session)
      const stream = (yield* SubscriptionRef.get(streams)).get(name)
      return Option.isSome(session) && stream !== undefined && stream.sessionId === session.value.sessionId
        ? Option.some({ ...stream, maxFrameBytes: session.value.maxFrameBytes })
        : Option.none()
    })

  // Scheduler name -> the rows of the last projection sent for it in this process or, before the first
  // one, of the last projection an earlier process stored once the brain acknowledged it.
  const lastProjected = new Map<string, ReadonlyArray<ScheduleProjection.ScheduleRow>>()

  const previousRows = (name: string) =>
    Effect.gen(function* () {
      const known = lastProjected.get(name)
      if (known !== undefined || Option.isNone(projectionStore)) return known ?? []
      const restored = Option.getOrElse(yield* projectionStore.value.restore(name), () => [])
      lastProjected.set(name, restored)
      return restored
    })

  const projectionData = (
    scheduler: SchedulerAdapter,
    options: Parameters<typeof ScheduleProjection.projectionBody>[0],
    reason: string,
    maxFrameBytes: number
  ) =>
    Effect.gen(function* () {
      const body = yield* Effect.try({
        try: () => ScheduleProjection.projectionBody(options),
        catch: (error) =>
          new CommandFailed({
            reason: `the schedules of ${scheduler.name} cannot be projected: ${error instanceof Error ? error.message : String(error)}`
          })
      })
      const data = { ...ScheduleProjection.projectionEventData(body), reason }
      const rendered = renderCanonical(data)
      if (renderCanonical(redactor.redact(data) as JsonValue) !== rendered) {
        return yield* failed(
          `the projection of ${scheduler.name} would change when redacted again, so its digest would not match; nothing sent`
        )
      }
      if (Buffer.byteLength(rendered, "utf8") > maxFrameBytes - frameEnvelopeBytes) {
        return yield* failed(
          `the projection of ${scheduler.name} (${options.schedules.length} schedules) does not fit in one frame of ${maxFrameBytes} bytes; nothing sent`
        )
      }
      return data
    })

  /**
   * Reads a scheduler and sends its complete inventory at the stream's next sequence. After an
   * activation, schedules sent earlier (in this process, or stored by an earlier one) and removed since
   * are first sent once more.
   * z4j 1.13.0 deletes a schedule only when its row belongs to the current epoch, and a row joins the
   * new epoch only when a projection of that epoch lists it. The complete snapshot at the next sequence
   * then deletes them.
   */
  const sendProjection = (
    adapter: EngineAdapter,
    scheduler: SchedulerAdapter,
    reason: "boot" | "periodic" | "command" | "activation"
  ): Effect.Effect<{ readonly sequence: number; readonly schedules: number }, CommandFailed> =>
    Effect.gen(function* () {
      const stream = yield* liveStream(scheduler.name)
      if (Option.isNone(stream)) return yield* failed(`${scheduler.name} has no schedule stream on this session`)
      const { authority, nextSequence, maxFrameBytes } = stream.value
      const entries = yield* scheduler.snapshot
      // Redacted first, so that the digest covers the bytes the dispatcher will send.
      const rows = (redactor.redact(entries) as unknown as ReadonlyArray<ScheduleProjection.ScheduleRow>).map(
        (row) => ({ ...row, source_key: row.name, engine: adapter.engine })
      )
      const keys = new Set(rows.map((row) => row.source_key))
      const removedRows =
        reason === "activation"
          ? (yield* previousRows(scheduler.name)).filter((row) => !keys.has(row.source_key ?? row.name))
          : []
      const snapshots = removedRows.length > 0 ? [[...rows, ...removedRows], rows] : [rows]

      const events: Array<{ readonly data: Readonly<Record<string, unknown>>; readonly sequence: number }> = []
      for (const [index, schedules] of snapshots.entries()) {
        const sequence = nextSequence + index
        const options = { authority, sequence, kind: "snapshot" as const, complete: true, schedules }
        events.push({ data: yield* projectionData(scheduler, options, reason, maxFrameBytes), sequence })
      }
      for (const [index, { data, sequence }] of events.entries()) {
        if (Option.isSome(projectionStore)) {
          yield* projectionStore.value.track({
            scheduler: scheduler.name,
            streamId: authority.streamId,
            epochNumber: authority.epochNumber,
            sequence,
            schedules: snapshots[index]!,
            digest: String(data.payload_digest)
          })
        }
        yield* dispatcher.emit({ kind: "schedule.snapshot", engine: authority.owner, taskId: "", data })
      }
      lastProjected.set(scheduler.name, rows)
      const sequence = nextSequence + events.length - 1
      yield* SubscriptionRef.update(streams, (current) => {
        // An activation that arrived meanwhile replaced the stream, and the new stream starts at 1.
        const now = current.get(scheduler.name)
        if (now === undefined || now.authority.epochUuid !== authority.epochUuid) return current
        return new Map(current).set(scheduler.name, { ...now, nextSequence: sequence + 1 })
      })
      yield* Effect.logDebug(
        `schedule projection ${sequence} of ${scheduler.name} sent (${rows.length} schedules, ${removedRows.length} sent again to delete them)`
      )
      return { sequence, schedules: rows.length }
    }).pipe(snapshotLock.withPermits(1))

  /** Installs the stream the brain handed a scheduler, and sends the complete snapshot it waits for. */
  const activate = (command: CommandRequest): Effect.Effect<CommandResult, CommandFailed> =>
    Effect.gen(function* () {
      const scheduler = yield* pickScheduler(command)
      const adapter = (yield* schedulers).find((entry) => entry.scheduler === scheduler)!.adapter
      const session = yield* SubscriptionRef.get(state.session)
      if (Option.isNone(session)) return yield* failed("no live session to bind the schedule stream to")
      const authority = yield* Effect.try({
        try: () => ScheduleProjection.decodeActivation(command.parameters, scheduler.name),
        catch: (error) =>
          new CommandFailed({
            reason: `${ScheduleProjection.activateAction}: ${error instanceof Error ? error.message : String(error)}`
          })
      })
      yield* SubscriptionRef.update(streams, (current) =>
        new Map(current).set(scheduler.name, { authority, sessionId: session.value.sessionId, nextSequence: 1 })
      )
      yield* Effect.logInfo(
        `schedule stream of ${scheduler.name} activated (stream ${authority.streamId}, epoch ${authority.epochNumber})`
      )
      // When this snapshot fails, the stream stays installed and the next snapshot retries sequence 1.
      const sent = yield* sendProjection(adapter, scheduler, "activation")
      return {
        scheduler: scheduler.name,
        stream_id: authority.streamId,
        epoch_number: authority.epochNumber,
        sequence: sent.sequence,
        schedules: sent.schedules
      }
    })

  /** Waits until every scheduler has a stream on the live session, or `graceMillis` passed. */
  const awaitActivations = (names: ReadonlyArray<string>, graceMillis: number) =>
    streams.changes.pipe(
      Stream.mapEffect(() => Effect.forEach(names, liveStream)),
      Stream.filter((found) => found.every(Option.isSome)),
      Stream.take(1),
      Stream.runDrain,
      Effect.timeout(graceMillis),
      Effect.ignore
    )

  const snapshotSchedules = (reason: "boot" | "periodic" | "command"): Effect.Effect<number, CommandFailed> =>
    Effect.gen(function* () {
      const found = yield* schedulers
      if (reason === "boot" && found.length > 0) {
        yield* awaitActivations(
          found.map(({ scheduler }) => scheduler.name),
          activationGraceMillis
        )
      }
      const refused = (yield* Ref.get(state.stats)).scheduleSnapshotsRefused
      const failures: Array<string> = []
      let sent = 0
      for (const { adapter, scheduler } of found) {
        if (Option.isSome(yield* liveStream(scheduler.name))) {
          if (reason === "boot") continue
          const projected = yield* sendProjection(adapter, scheduler, reason).pipe(Effect.either)
          if (projected._tag === "Left") {
            failures.push(`${scheduler.name}: ${projected.left.reason}`)
            yield* Effect.logWarning(`schedule projection of ${scheduler.name} failed; nothing sent`, projected.left)
          } else {
            sent += 1
          }
          continue
        }
        if (refused !== null) {
          failures.push(`${scheduler.name}: ${refused}, and the brain has not activated a schedule stream for it`)
          continue
        }
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
    if (action === ScheduleProjection.activateAction) return activate(command)
    if (action === ScheduleProjection.controlAction) {
      // NOTE: z4j 1.13 marks the stream faulted when this control fails, so that stream takes no more
      // projections. Implementing it needs a `control` projection that matches the brain's desired row.
      return failed(
        `${action} (enable or disable from the brain) is not implemented by this agent; enable or disable the job scheduler in the engine instead`
      )
    }
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
      const claim =
        typeof command.deliveryClaimToken === "string" ? { delivery_claim_token: command.deliveryClaimToken } : {}
      yield* session.send("command_ack", command.id, encodeCommandAckPayload(claim)).pipe(Effect.ignore)
      const previous = seen.get(command.id)
      if (previous !== undefined && previous.expiresAtMillis > nowMillis) {
        yield* Effect.logDebug("duplicate command delivery acknowledged again", { command: command.id })
        if (previous.outcome !== undefined) {
          yield* session
            .send("command_result", command.id, encodeCommandResultPayload({ ...previous.outcome, ...claim }))
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
            encodeCommandResultPayload({ ...outcome, ...claim }),
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
