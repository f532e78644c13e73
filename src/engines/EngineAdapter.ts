/**
 * The contract between the agent and an engine adapter (BullMQ, the in-process Effect engine, or a
 * user's own). An adapter reports job lifecycle events through an {@link EventSink} and executes the
 * brain's commands; the agent owns the socket, the buffer, redaction and signing.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * Event kinds the brain knows (z4j-core `EventKind`). Any other string is stored by the brain as
 * `unknown`, so adapters keep engine-specific states (progress, stalled) inside `data`.
 *
 * @since 0.1.0
 * @category models
 */
export type EventKind =
  | "task.sent"
  | "task.received"
  | "task.started"
  | "task.succeeded"
  | "task.failed"
  | "task.retried"
  | "task.revoked"
  | "task.rejected"
  | "worker.online"
  | "worker.offline"
  | "worker.heartbeat"
  | "queue.depth_report"
  | "schedule.run_started"
  | "schedule.run_completed"
  | "schedule.created"
  | "schedule.updated"
  | "schedule.deleted"
  | "schedule.snapshot"

/**
 * A lifecycle event as an adapter reports it, before the dispatcher gives it an id, redacts it and
 * serializes it. `data` may hold any value: the redactor turns it into JSON-safe form.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskEvent {
  readonly kind: EventKind
  /** The engine name on the wire, such as `"bullmq"`. */
  readonly engine: string
  /** Unique per engine (the brain keys tasks by project, engine and task_id); at most 200 characters, no `/`. */
  readonly taskId: string
  /** Defaults to the time the dispatcher receives the event. */
  readonly occurredAt?: Date | undefined
  readonly data: Readonly<Record<string, unknown>>
}

/**
 * Where adapters send events. `emit` is synchronous, never throws and never blocks: when the agent's
 * intake queue is full the event is dropped and counted, so it is safe to call from an event
 * emitter callback on the host's hot path.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventSink {
  readonly emit: (event: TaskEvent) => void
  /** Reports task names an engine knows (`registry_delta`); best effort, never buffered. */
  readonly registry: (delta: RegistryDelta) => void
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RegistryDelta {
  readonly engine: string
  readonly added: ReadonlyArray<Readonly<Record<string, unknown>>>
  readonly removed: ReadonlyArray<string>
}

/**
 * A command from the brain, after its signature and replay checks.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandRequest {
  /** The command UUID (the frame id). */
  readonly id: string
  readonly action: string
  readonly target: { readonly type: string; readonly id: string | null } & Readonly<Record<string, unknown>>
  readonly parameters: Readonly<Record<string, unknown>>
  readonly timeoutSeconds: number
  readonly issuedBy: string | null
  /** The brain's claim on this delivery (z4j 1.13), echoed in the ack and the result. */
  readonly deliveryClaimToken?: string | null
}

/**
 * A command that ran and failed. `reason` becomes the `error` of the `command_result` frame, so it
 * says what failed in words an operator can act on (the engine's own message where there is one).
 *
 * @since 0.1.0
 * @category errors
 */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{
  readonly reason: string
  readonly result?: Readonly<Record<string, unknown>> | null
}> {
  override get message(): string {
    return this.reason
  }
}

/**
 * The `result` object of a successful command, or null.
 *
 * @since 0.1.0
 * @category models
 */
export type CommandResult = Readonly<Record<string, unknown>> | null

/**
 * One schedule in the shape the brain's `schedule.snapshot` reads.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleEntry {
  readonly name: string
  readonly task_name: string
  readonly kind: "cron" | "interval" | "solar" | "clocked"
  readonly expression: string
  readonly timezone: string
  readonly queue: string | null
  readonly args: ReadonlyArray<unknown>
  readonly kwargs: Readonly<Record<string, unknown>>
  readonly is_enabled: boolean
  readonly last_run_at: string | null
  readonly next_run_at: string | null
  readonly total_runs: number
  readonly external_id?: string | null
}

/**
 * A scheduler an adapter exposes (BullMQ job schedulers, for one). The agent sends a complete
 * `schedule.snapshot` at boot, periodically and on `schedule.resync`; `snapshot` must fail rather
 * than return a partial list, because the brain deletes every schedule missing from a snapshot.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchedulerAdapter {
  /** The scheduler name sent in `hello.schedulers` and in `schedule.snapshot` events. */
  readonly name: string
  readonly capabilities: ReadonlyArray<string>
  readonly snapshot: Effect.Effect<ReadonlyArray<ScheduleEntry>, CommandFailed>
  /** Handles `schedule.enable`, `schedule.disable`, `schedule.delete` and `schedule.trigger_now`. */
  readonly execute: (command: CommandRequest) => Effect.Effect<CommandResult, CommandFailed>
}

/**
 * An engine adapter.
 *
 * @since 0.1.0
 * @category models
 */
export interface EngineAdapter {
  /** Unique among registered adapters; defaults to the engine name. */
  readonly name: string
  /** The engine name on the wire (`hello.engines`, `event.engine`). */
  readonly engine: string
  /**
   * Command tokens this adapter executes, advertised in the hello capability map. An adapter that lists
   * `retry_task` must re-run the job from the engine's own copy of its arguments (or from the operator's
   * explicit overrides), never from the redacted arguments the brain holds: the agent advertises that
   * contract to the brain as `retry_by_reference_v1`.
   */
  readonly capabilities: ReadonlyArray<string>
  /** Starts reporting events to `sink`; everything it starts is released when the scope closes. */
  readonly start: (sink: EventSink) => Effect.Effect<void, never, Scope.Scope>
  /** Executes one command whose action is one of `capabilities`. */
  readonly execute: (command: CommandRequest) => Effect.Effect<CommandResult, CommandFailed>
  /**
   * Whether this adapter owns the command's target, used only when several adapters share an engine
   * name (two Redis prefixes, for example). Adapters that are alone for their engine may omit it.
   */
  readonly handles?: (command: CommandRequest) => boolean
  /**
   * Entries for heartbeat `adapter_health`: keys such as `"bullmq.queue_depths"`, values strings
   * (JSON text where the brain parses one). The agent caps the time it waits for this.
   */
  readonly health?: Effect.Effect<Readonly<Record<string, string>>>
  readonly scheduler?: SchedulerAdapter
}
