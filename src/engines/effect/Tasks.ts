/**
 * The in-process engine for Effect applications. Jobs run as effects inside the process; the
 * {@link Tasks} service reports their lifecycle to the brain (engine name `effect`) and executes the
 * operator's `cancel_task`, `retry_task` and `submit_task` commands.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { type EngineNameTaken, EngineRegistry } from "../../services/EngineRegistry.js"
import type { EngineAdapter } from "../EngineAdapter.js"
import * as internal from "./internal/engine.js"

/**
 * The priority labels the brain stores; it reads any other value as `normal`.
 *
 * @since 0.1.0
 * @category models
 */
export type Priority = "critical" | "high" | "normal" | "low"

/**
 * The arguments, queue and priority of one task run. `args` and `kwargs` are reported in
 * `task.received` (the agent redacts them before they leave the process) and kept in memory so that
 * `retry_task` can re-run the task with the original values.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskInput {
  readonly args?: ReadonlyArray<unknown> | undefined
  readonly kwargs?: Readonly<Record<string, unknown>> | undefined
  /** Defaults to the task's registered queue, then to the layer's `queue`. */
  readonly queue?: string | undefined
  readonly priority?: Priority | undefined
}

/**
 * Options of {@link TasksShape.run}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions<E> extends TaskInput {
  /**
   * Re-runs the effect after a failure while the schedule continues, reporting `task.retried`
   * before each wait. Defects and interruptions are not retried.
   *
   * NOTE: brain 1.6.9 keeps one event per task, kind and second, so with retries less than a
   * second apart it stores only the first `task.retried` and `task.started` of that second.
   */
  readonly retry?: Schedule.Schedule<unknown, E> | undefined
}

/**
 * Options of {@link TasksShape.submit}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubmitOptions extends TaskInput {
  /** Waits this long after `task.received` before the first attempt starts. */
  readonly delay?: Duration.DurationInput | undefined
}

/**
 * Options of {@link TasksShape.register}.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskOptions<E> {
  /** The queue reported for runs that name none. */
  readonly queue?: string | undefined
  /** The priority reported for runs that name none. */
  readonly priority?: Priority | undefined
  /** The retry policy of every run of this task, with the semantics of {@link RunOptions.retry}. */
  readonly retry?: Schedule.Schedule<unknown, E> | undefined
}

/**
 * A running task started by {@link TasksShape.submit}.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskHandle {
  readonly taskId: string
  /** The task's fiber, a child of the engine's scope. */
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
}

/**
 * The body of a registered task. It receives the arguments of `submit` or of the brain's
 * `submit_task` command, or the retained originals on `retry_task`.
 *
 * @since 0.1.0
 * @category models
 */
export type TaskFunction<A, E, R> = (
  args: ReadonlyArray<unknown>,
  kwargs: Readonly<Record<string, unknown>>
) => Effect.Effect<A, E, R>

/**
 * @since 0.1.0
 * @category errors
 */
export class TaskNameTaken extends Data.TaggedError("TaskNameTaken")<{ readonly name: string }> {
  override get message(): string {
    return `A task named "${this.name}" is already registered with this engine; register each task name once, or give the second task another name`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export class TaskNotFound extends Data.TaggedError("TaskNotFound")<{ readonly name: string }> {
  override get message(): string {
    return `No task named "${this.name}" is registered with this engine; register it with Tasks.register before submitting it`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TasksShape {
  /**
   * Declares a task that `submit`, `submit_task` and `retry_task` may start by name. The context
   * `R` is captured now and provided to every run.
   */
  readonly register: <A, E, R>(
    name: string,
    run: TaskFunction<A, E, R>,
    options?: TaskOptions<E>
  ) => Effect.Effect<void, TaskNameTaken, R>
  /**
   * Runs `effect` as the task `name` and reports `task.received`, `task.started`, then
   * `task.succeeded`, `task.failed` or `task.revoked` (with `task.retried` and another `task.started`
   * for each retry). The effect runs in a child fiber joined by the caller, so `cancel_task` can
   * interrupt it; the caller then sees an interruption. Results, errors and interruptions reach the
   * caller unchanged.
   */
  readonly run: <A, E, R>(
    name: string,
    effect: Effect.Effect<A, E, R>,
    options?: RunOptions<E>
  ) => Effect.Effect<A, E, R>
  /** Starts a registered task in its own fiber in the engine's scope and returns without waiting for it. */
  readonly submit: (name: string, options?: SubmitOptions) => Effect.Effect<TaskHandle, TaskNotFound>
  /** The ids of the tasks that are running now (waiting, started or between retries). */
  readonly running: Effect.Effect<ReadonlyArray<string>>
  /** The adapter registered with the agent; exposed so tests and custom wiring can call `execute`. */
  readonly adapter: EngineAdapter
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Tasks extends Context.Tag("z4j-agent/Tasks")<Tasks, TasksShape>() {}

/**
 * Options of {@link make} and {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The adapter name, unique among the agent's adapters. Default `"effect"`. */
  readonly name?: string | undefined
  /** The queue reported for tasks that name none. Default `"default"`. */
  readonly queue?: string | undefined
  /** The worker reported in `task.started`. Default `effect@<hostname>:<pid>`. */
  readonly worker?: string | undefined
  /** How many recent tasks keep their arguments for `retry_task`, a finite count. Default 10,000. */
  readonly retainedTasks?: number | undefined
  /** How long `cancel_task` waits for the interrupted task to stop before it reports failure. Default 5 seconds. */
  readonly cancelTimeout?: Duration.DurationInput | undefined
}

/**
 * Builds the engine and registers its adapter with the agent for the lifetime of the scope. Closing
 * the scope interrupts the submitted tasks still running and reports them revoked.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<TasksShape, EngineNameTaken, EngineRegistry | Scope.Scope> =>
  Effect.gen(function* () {
    const registry = yield* EngineRegistry
    const scope = yield* Effect.scope
    const engine = internal.make(options, scope)
    yield* registry.register(engine.adapter)
    return engine
  })

/**
 * Provides {@link Tasks} and registers the `effect` engine adapter.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Tasks, EngineNameTaken, EngineRegistry> =>
  Layer.scoped(Tasks, make(options))

/**
 * Registers a task with the {@link Tasks} service in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const register = <A, E, R>(
  name: string,
  run: TaskFunction<A, E, R>,
  options?: TaskOptions<E>
): Effect.Effect<void, TaskNameTaken, R | Tasks> => Effect.flatMap(Tasks, (tasks) => tasks.register(name, run, options))

/**
 * Runs `effect` as a task with the {@link Tasks} service in context; see {@link TasksShape.run}.
 *
 * @since 0.1.0
 * @category accessors
 */
export const run = <A, E, R>(
  name: string,
  effect: Effect.Effect<A, E, R>,
  options?: RunOptions<E>
): Effect.Effect<A, E, R | Tasks> => Effect.flatMap(Tasks, (tasks) => tasks.run(name, effect, options))

/**
 * The pipeable form of {@link run}: `effect.pipe(Tasks.task("send-email", { args: [to] }))`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const task =
  <E = unknown>(name: string, options?: RunOptions<E>) =>
  <A, E2 extends E, R>(effect: Effect.Effect<A, E2, R>): Effect.Effect<A, E2, R | Tasks> =>
    run(name, effect, options)

/**
 * Submits a registered task with the {@link Tasks} service in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const submit = (name: string, options?: SubmitOptions): Effect.Effect<TaskHandle, TaskNotFound, Tasks> =>
  Effect.flatMap(Tasks, (tasks) => tasks.submit(name, options))
