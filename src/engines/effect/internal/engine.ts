import { hostname } from "node:os"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import type * as Scope from "effect/Scope"
import { newUuidV7 as uuidV7 } from "../../../protocol/Ids.js"
import {
  CommandFailed,
  type CommandRequest,
  type CommandResult,
  type EngineAdapter,
  type EventKind,
  type EventSink
} from "../../EngineAdapter.js"
import type * as Tasks from "../Tasks.js"
import { TaskNameTaken, TaskNotFound } from "../Tasks.js"
import * as commands from "./commands.js"
import { describeError, failureData, runtimeData } from "./report.js"

const engineName = "effect"

const capabilities: ReadonlyArray<string> = ["cancel_task", "retry_task", "submit_task"]

/** Task states named as the brain names them, so `state_before` reads the same as the dashboard. */
type TaskState = "received" | "started" | "retry" | "success" | "failure" | "revoked"

interface Lineage {
  readonly taskId: string
  readonly rootId: string
}

// The task whose body is running on this fiber, so that tasks started from inside it report their
// parent and root.
const currentTask = FiberRef.unsafeMake<Lineage | undefined>(undefined)

const noopSink: EventSink = { emit: () => {}, registry: () => {} }

interface RegisteredTask {
  readonly name: string
  readonly run: (
    args: ReadonlyArray<unknown>,
    kwargs: Readonly<Record<string, unknown>>
  ) => Effect.Effect<unknown, unknown>
  readonly queue: string | undefined
  readonly priority: Tasks.Priority | undefined
  readonly retry: Schedule.Schedule<unknown, unknown> | undefined
}

class TaskRecord {
  state: TaskState = "received"
  retries = 0
  startedAtNanos: bigint | undefined = undefined
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined = undefined
  cancelledBy: FiberId.FiberId | undefined = undefined
  finished = false
  private waiters: Array<() => void> | undefined = undefined

  constructor(
    readonly id: string,
    readonly name: string,
    readonly args: ReadonlyArray<unknown>,
    readonly kwargs: Readonly<Record<string, unknown>>,
    readonly queue: string,
    readonly priority: Tasks.Priority | undefined,
    readonly lineage: Lineage | undefined
  ) {}

  /** Completes when the task has reported its terminal event. */
  awaitDone(): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (this.finished) return resume(Effect.void)
      const waiter = () => resume(Effect.void)
      this.waiters ??= []
      this.waiters.push(waiter)
      return Effect.sync(() => {
        this.waiters = this.waiters?.filter((other) => other !== waiter)
      })
    })
  }

  finish(state: TaskState): void {
    this.finished = true
    this.state = state
    // A finished record stays in the retention map for retry_task; dropping the fiber lets its
    // context be collected.
    this.fiber = undefined
    const waiters = this.waiters ?? []
    this.waiters = undefined
    for (const waiter of waiters) waiter()
  }
}

/** The engine behind the `Tasks` service and its adapter. */
class TaskEngine implements Tasks.TasksShape {
  private sink: EventSink = noopSink
  private emitFailures = 0
  private readonly registered = new Map<string, RegisteredTask>()
  private readonly active = new Map<string, TaskRecord>()
  private readonly retained = new Map<string, TaskRecord>()
  // The retained ids in a ring, oldest at `retainedCursor` once full. Evicting through the map's own
  // insertion order is slower, because V8 walks over deleted entries to find the first live key.
  private readonly retainedOrder: Array<string | undefined>
  private retainedCursor = 0
  private readonly queue: string
  private readonly worker: string
  private readonly retainedTasks: number
  private readonly cancelTimeout: Duration.Duration
  readonly adapter: EngineAdapter

  constructor(
    options: Tasks.Options,
    private readonly scope: Scope.Scope
  ) {
    this.queue = options.queue ?? "default"
    this.worker = options.worker ?? `effect@${hostname()}:${process.pid}`
    const retainedTasks = options.retainedTasks ?? 10_000
    this.retainedTasks = Number.isFinite(retainedTasks) ? Math.max(0, Math.floor(retainedTasks)) : 10_000
    this.retainedOrder = new Array(this.retainedTasks)
    this.cancelTimeout = Duration.decode(options.cancelTimeout ?? Duration.seconds(5))
    const name = options.name ?? engineName
    this.adapter = {
      name,
      engine: engineName,
      capabilities,
      start: (sink) =>
        Effect.sync(() => {
          this.sink = sink
          this.reportRegistry([...this.registered.values()])
        }),
      execute: (command) => this.execute(name, command),
      handles: (command) => this.handles(command),
      health: Effect.sync(() => ({
        [`${name}.running_tasks`]: String(this.active.size),
        [`${name}.registered_tasks`]: String(this.registered.size),
        [`${name}.emit_failures`]: String(this.emitFailures)
      }))
    }
  }

  // service

  readonly register = <A, E, R>(
    name: string,
    run: Tasks.TaskFunction<A, E, R>,
    options: Tasks.TaskOptions<E> = {}
  ): Effect.Effect<void, TaskNameTaken, R> =>
    Effect.flatMap(Effect.context<R>(), (context) =>
      Effect.suspend(() => {
        if (this.registered.has(name)) return Effect.fail(new TaskNameTaken({ name }))
        const task: RegisteredTask = {
          name,
          // A body that throws instead of returning an effect becomes a defect of that run.
          run: (args, kwargs) =>
            Effect.provide(
              Effect.suspend(() => run(args, kwargs)),
              context
            ),
          queue: options.queue,
          priority: options.priority,
          // Sound because a schedule's input is contravariant: it only ever receives this task's errors.
          retry: options.retry as Schedule.Schedule<unknown, unknown> | undefined
        }
        this.registered.set(name, task)
        this.reportRegistry([task])
        return Effect.void
      })
    )

  readonly run = <A, E, R>(
    name: string,
    effect: Effect.Effect<A, E, R>,
    options: Tasks.RunOptions<E> = {}
  ): Effect.Effect<A, E, R> =>
    Effect.flatMap(FiberRef.get(currentTask), (lineage) =>
      // Masked from receipt to attach, so an interruption cannot leave a received task without a fiber.
      Effect.uninterruptibleMask((restore) => {
        const record = this.receive(name, options, undefined, lineage, undefined)
        return Effect.flatMap(Effect.fork(restore(this.body(record, effect, options.retry, 0))), (fiber) => {
          this.attach(record, fiber)
          return restore(Fiber.join(fiber)).pipe(Effect.onInterrupt(() => Fiber.interrupt(fiber)))
        })
      })
    )

  readonly submit = (name: string, options: Tasks.SubmitOptions = {}): Effect.Effect<Tasks.TaskHandle, TaskNotFound> =>
    Effect.suspend(() => {
      const task = this.registered.get(name)
      if (task === undefined) return Effect.fail(new TaskNotFound({ name }))
      const delay = options.delay === undefined ? 0 : Duration.toMillis(options.delay)
      return this.start(task, options, delay, undefined)
    })

  readonly running: Effect.Effect<ReadonlyArray<string>> = Effect.sync(() => [...this.active.keys()])

  // lifecycle

  private start(
    task: RegisteredTask,
    input: Tasks.TaskInput,
    delayMillis: number,
    retriedFrom: string | undefined
  ): Effect.Effect<Tasks.TaskHandle> {
    return Effect.flatMap(FiberRef.get(currentTask), (lineage) =>
      Effect.uninterruptible(
        Effect.suspend(() => {
          const record = this.receive(task.name, input, task, lineage, retriedFrom)
          const effect = Effect.suspend(() => task.run(record.args, record.kwargs))
          // Interruptible whatever the submitter's region, so cancel_task and scope close can stop it.
          const body = Effect.interruptible(this.body(record, effect, task.retry, delayMillis))
          return Effect.map(Effect.forkIn(body, this.scope), (fiber): Tasks.TaskHandle => {
            this.attach(record, fiber)
            return { taskId: record.id, fiber }
          })
        })
      )
    )
  }

  private receive(
    name: string,
    input: Tasks.TaskInput,
    defaults: RegisteredTask | undefined,
    lineage: Lineage | undefined,
    retriedFrom: string | undefined
  ): TaskRecord {
    const record = new TaskRecord(
      uuidV7(),
      name,
      input.args ?? [],
      input.kwargs ?? {},
      input.queue ?? defaults?.queue ?? this.queue,
      input.priority ?? defaults?.priority,
      lineage
    )
    this.active.set(record.id, record)
    this.retain(record)

    const data: Record<string, unknown> = {
      task_name: name,
      queue: record.queue,
      args: record.args,
      kwargs: record.kwargs
    }
    if (record.priority !== undefined) data.priority = record.priority
    if (lineage !== undefined) {
      data.parent_task_id = lineage.taskId
      data.root_task_id = lineage.rootId
    }
    if (retriedFrom !== undefined) data.retried_from = retriedFrom
    this.emit("task.received", record, data)
    return record
  }

  private retain(record: TaskRecord): void {
    if (this.retainedTasks === 0) return
    const evicted = this.retainedOrder[this.retainedCursor]
    if (evicted !== undefined) this.retained.delete(evicted)
    this.retainedOrder[this.retainedCursor] = record.id
    this.retainedCursor = (this.retainedCursor + 1) % this.retainedTasks
    this.retained.set(record.id, record)
  }

  private attach<A, E>(record: TaskRecord, fiber: Fiber.RuntimeFiber<A, E>): void {
    record.fiber = fiber
    // Reports fibers that were interrupted before their body ran; for the others the body's own
    // exit handler has already reported, and this does nothing.
    fiber.addObserver((exit) => this.finish(record, exit, undefined))
    if (record.cancelledBy !== undefined && !record.finished) fiber.unsafeInterruptAsFork(record.cancelledBy)
  }

  private body<A, E, R>(
    record: TaskRecord,
    effect: Effect.Effect<A, E, R>,
    retry: Schedule.Schedule<unknown, E> | undefined,
    delayMillis: number
  ): Effect.Effect<A, E, R> {
    const engine = this
    const attempts = Effect.gen(function* () {
      if (delayMillis > 0) yield* Effect.sleep(Duration.millis(delayMillis))
      let scheduleState: unknown = retry?.initial
      while (true) {
        record.startedAtNanos = yield* Clock.currentTimeNanos
        engine.markStarted(record)
        const exit = yield* Effect.exit(effect)
        if (Exit.isSuccess(exit)) return exit.value

        // Only failures are retried, as with Effect.retry: defects and interruptions end the task.
        const error = Cause.failureOption(exit.cause)
        if (retry === undefined || Option.isNone(error) || Cause.isInterrupted(exit.cause)) return yield* exit
        const now = yield* Clock.currentTimeMillis
        const [nextState, , decision] = yield* retry.step(now, error.value, scheduleState)
        if (ScheduleDecision.isDone(decision)) return yield* exit
        scheduleState = nextState

        engine.markRetried(record, exit.cause)
        const waitMillis = ScheduleIntervals.start(decision.intervals) - now
        if (waitMillis > 0) yield* Effect.sleep(Duration.millis(waitMillis))
      }
    })
    return attempts.pipe(
      Effect.onExit((exit) => Effect.map(Clock.currentTimeNanos, (now) => engine.finish(record, exit, now))),
      Effect.locally(currentTask, { taskId: record.id, rootId: record.lineage?.rootId ?? record.id })
    )
  }

  private markStarted(record: TaskRecord): void {
    record.state = "started"
    const data: Record<string, unknown> = { task_name: record.name, queue: record.queue, worker: this.worker }
    if (record.retries > 0) data.retry_count = record.retries
    this.emit("task.started", record, data)
  }

  private markRetried(record: TaskRecord, cause: Cause.Cause<unknown>): void {
    record.retries += 1
    record.state = "retry"
    this.emit("task.retried", record, {
      task_name: record.name,
      queue: record.queue,
      worker: this.worker,
      retry_count: record.retries,
      ...failureData(cause)
    })
  }

  private finish(record: TaskRecord, exit: Exit.Exit<unknown, unknown>, nowNanos: bigint | undefined): void {
    if (record.finished) return
    this.active.delete(record.id)

    const data: Record<string, unknown> = { task_name: record.name, queue: record.queue, worker: this.worker }
    if (record.retries > 0) data.retry_count = record.retries
    if (nowNanos !== undefined && record.startedAtNanos !== undefined) {
      Object.assign(data, runtimeData(nowNanos - record.startedAtNanos))
    }

    if (Exit.isSuccess(exit)) {
      data.result = exit.value === undefined ? null : exit.value
      record.finish("success")
      this.emit("task.succeeded", record, data)
    } else if (Cause.isInterruptedOnly(exit.cause)) {
      data.reason = record.cancelledBy === undefined ? "interrupted" : "cancel_task"
      record.finish("revoked")
      this.emit("task.revoked", record, data)
    } else {
      Object.assign(data, failureData(exit.cause))
      record.finish("failure")
      this.emit("task.failed", record, data)
    }
  }

  private emit(kind: EventKind, record: TaskRecord, data: Record<string, unknown>): void {
    // EventSink.emit is specified never to throw, but a sink that does must not fail the host's task.
    try {
      this.sink.emit({ kind, engine: engineName, taskId: record.id, data })
    } catch {
      this.emitFailures += 1
    }
  }

  private reportRegistry(tasks: ReadonlyArray<RegisteredTask>): void {
    if (tasks.length === 0) return
    const added = tasks.map((task) => {
      const entry: Record<string, unknown> = { name: task.name }
      if (task.queue !== undefined) entry.queue = task.queue
      return entry
    })
    try {
      this.sink.registry({ engine: engineName, added, removed: [] })
    } catch {
      this.emitFailures += 1
    }
  }

  // commands

  private handles(command: CommandRequest): boolean {
    if (command.action === "submit_task") {
      const name = commands.optionalString(command.parameters.name)
      return name !== undefined && this.registered.has(name)
    }
    const id = commands.optionalTaskId(command, engineName)
    return id !== undefined && (this.active.has(id) || this.retained.has(id))
  }

  private execute(adapterName: string, command: CommandRequest): Effect.Effect<CommandResult, CommandFailed> {
    const result = Effect.suspend(() => {
      switch (command.action) {
        case "cancel_task":
          return this.cancel(adapterName, command)
        case "retry_task":
          return this.retry(command)
        case "submit_task":
          return this.submitCommand(command)
        default:
          return Effect.fail(
            new CommandFailed({
              reason: `The effect engine "${adapterName}" does not implement ${command.action}; it implements ${capabilities.join(", ")}`
            })
          )
      }
    })
    return Effect.catchAllDefect(
      result,
      (defect) => new CommandFailed({ reason: `${command.action} failed unexpectedly: ${describeError(defect)}` })
    )
  }

  private cancel(adapterName: string, command: CommandRequest): Effect.Effect<CommandResult, CommandFailed> {
    const engine = this
    return Effect.gen(function* () {
      const taskId = yield* commands.taskId(command, engineName)
      const record = engine.active.get(taskId)
      if (record === undefined) {
        const finished = engine.retained.get(taskId)
        return yield* new CommandFailed({
          reason:
            finished === undefined
              ? `No task "${taskId}" is known to the effect engine "${adapterName}"; it ran in another process, or finished too long ago to be remembered`
              : `Task "${taskId}" already finished (${finished.state}); only a running task can be cancelled`
        })
      }

      const stateBefore = record.state
      const canceller = yield* Effect.fiberId
      record.cancelledBy ??= canceller
      // A task received but not yet attached to its fiber is interrupted by attach.
      if (record.fiber !== undefined) yield* Fiber.interruptAsFork(record.fiber, canceller)

      const stopped = yield* Effect.timeoutOption(record.awaitDone(), engine.cancelTimeout)
      if (Option.isNone(stopped)) {
        return yield* new CommandFailed({
          reason: `Task "${taskId}" was interrupted but is still running after ${Duration.format(engine.cancelTimeout)}, because it is in an uninterruptible region; it will be reported revoked when it stops`,
          result: { task_id: taskId, cancelled: false, state_before: stateBefore }
        })
      }
      if (record.state !== "revoked") {
        return yield* new CommandFailed({
          reason: `Task "${taskId}" finished (${record.state}) before the interruption took effect`
        })
      }
      return { task_id: taskId, cancelled: true, state_before: stateBefore }
    })
  }

  private retry(command: CommandRequest): Effect.Effect<CommandResult, CommandFailed> {
    const engine = this
    return Effect.gen(function* () {
      const taskId = yield* commands.taskId(command, engineName)
      const overrideArgs = yield* commands.list(command, "override_args")
      const overrideKwargs = yield* commands.object(command, "override_kwargs")
      const now = yield* Clock.currentTimeMillis
      const delay = yield* commands.delayMillis(command, now)

      // The command's own args and kwargs are the brain's redacted copies, so they are never used.
      const original = engine.retained.get(taskId)
      const name = original?.name ?? commands.optionalString(command.parameters.task_name)
      if (name === undefined) {
        return yield* new CommandFailed({
          reason: `Task "${taskId}" is not among the ${engine.retainedTasks} most recent tasks of this engine and the command names no task, so it cannot be retried`
        })
      }
      const task = engine.registered.get(name)
      if (task === undefined) {
        return yield* new CommandFailed({
          reason: `Task "${taskId}" ran as "${name}", which is not registered with Tasks.register, so it cannot be re-run by reference`
        })
      }
      const args = overrideArgs ?? original?.args
      const kwargs = overrideKwargs ?? original?.kwargs
      if (args === undefined || kwargs === undefined) {
        return yield* new CommandFailed({
          reason: `The arguments of task "${taskId}" are no longer held (this engine keeps those of the ${engine.retainedTasks} most recent tasks); retry it with both override_args and override_kwargs`
        })
      }

      const handle = yield* engine.start(
        task,
        { args, kwargs, queue: original?.queue, priority: commands.priority(command) ?? original?.priority },
        delay,
        taskId
      )
      return { task_id: taskId, new_task_id: handle.taskId }
    })
  }

  private submitCommand(command: CommandRequest): Effect.Effect<CommandResult, CommandFailed> {
    const engine = this
    return Effect.gen(function* () {
      const name = commands.optionalString(command.parameters.name)
      if (name === undefined) {
        return yield* new CommandFailed({ reason: "submit_task needs parameters.name, the name of a registered task" })
      }
      const task = engine.registered.get(name)
      if (task === undefined) return yield* new CommandFailed({ reason: new TaskNotFound({ name }).message })
      const args = yield* commands.list(command, "args")
      const kwargs = yield* commands.object(command, "kwargs")
      const now = yield* Clock.currentTimeMillis
      const delay = yield* commands.delayMillis(command, now)

      const handle = yield* engine.start(
        task,
        {
          args,
          kwargs,
          queue: commands.optionalString(command.parameters.queue),
          priority: commands.priority(command)
        },
        delay,
        undefined
      )
      return { new_task_id: handle.taskId }
    })
  }
}

/** Builds the engine; its submitted tasks are forked into `scope`. */
export const make = (options: Tasks.Options, scope: Scope.Scope): Tasks.TasksShape => new TaskEngine(options, scope)
